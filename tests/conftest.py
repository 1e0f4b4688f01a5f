"""Shared fixtures: every test gets its own store folder and a clean environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.config import Settings

pytest_plugins = ["tests.fake_openai", "tests.chroma_server"]

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
