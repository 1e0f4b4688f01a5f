"""Deterministic fakes registered through the real registries (like simonw/llm's ``EmbedDemo``).

``fake/word-lengths`` is an embedder whose vector is the lengths of a text's first
four words, so similarities are exact and known in advance; it needs no model
files. ``tests/conftest.py`` registers it, so ``Settings(embedder="fake/word-lengths")``
builds it through ``rag.adapters.embedders.build_embedder`` like any real provider.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rag.adapters import embedders as emb
from rag.config import Settings

FAKE_EMBEDDER = "fake/word-lengths"


class WordLengths(emb._BaseEmbedder):
    """Deterministic fake: the vector is the lengths of the first 4 words (exact similarities)."""

    name, dim, max_tokens = FAKE_EMBEDDER, 4, None

    def __init__(self, **kw: Any) -> None:
        super().__init__(batch_size=kw.pop("batch_size", 2), **kw)
        self.seen: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _embed_all(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        return np.array([[len(w) for w in (t.split() + ["x"] * 4)[:4]] for t in texts], dtype=np.float32)


def _build(settings: Settings, model: str, client: Any) -> WordLengths:
    return WordLengths(batch_size=settings.embed_batch_size)


def register() -> None:
    """Register ``fake/word-lengths`` with the embedder registry (idempotent)."""
    emb.register_embedder("fake", _build, dim=WordLengths.dim)
