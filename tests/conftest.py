"""Shared fixtures: every test gets its own store folder and a clean environment.

Tests come in tiers, by folder: ``unit`` (no model, no Chroma; ``scripts/test --fast``),
``integration`` (the real embedder, real Chroma embedded and in server mode, the real
openai client against a scripted local server), ``ui`` (AppTest, headless Chromium) and
``soak`` (long fuzz and crash runs, marked ``slow``). The fake embedder of
``tests/fakes.py`` is registered through the real registry for every tier.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.config import Settings
from tests import fakes

pytest_plugins = ["tests.fake_openai", "tests.chroma_server"]
fakes.register()
TIERS = ("unit", "integration", "ui", "soak")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier (its folder); soak tests are also ``slow``."""
    for item in items:
        tier = next((t for t in TIERS if f"{os.sep}{t}{os.sep}" in str(item.path)), None)
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
        if tier == "soak":
            item.add_marker(pytest.mark.slow)


REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SAMPLE = REPO / "data" / "india-russia-working-group-moscow.txt"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Point all state at a temp dir and drop settings a developer may have exported."""
    for name in list(os.environ):
        if name.startswith("RAG_") or name in {"OPENAI_API_KEY", "OPENAI_BASE_URL"}:
            monkeypatch.delenv(name, raising=False)
    cache = SHARED / "tiktoken-cache"
    if cache.is_dir():
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("RAG_STORE", str(tmp_path / "store"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Default (embedded, extractive) settings on a fresh store folder."""
    return Settings(store=tmp_path / "store")


@pytest.fixture(scope="session")
def embedder():
    """The real local embedder, built once per test session."""
    from rag.adapters.embedders import build_embedder

    return build_embedder(Settings())
