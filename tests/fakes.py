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


class MemoryStore:
    """A ``rag.ports.Store`` in memory, for unit tests of whole pipelines without Chroma.

    Same contract as ``rag.adapters.chroma.ChromaStore``: a report is visible once its record is
    written, chunks of older versions go at that moment, the generation moves on every change.
    Pass it in: ``build_pipeline(settings, embedder=..., store=MemoryStore(embedder))``.
    """

    def __init__(self, embedder: Any, location: str = "memory") -> None:
        self.location, self.embedder_name, self.dim = location, embedder.name, embedder.dim
        self.writes = 0
        self._gen = 0
        self._docs: dict[str, tuple[Any, Any]] = {}  # source -> (Document, SourceInfo)
        self._chunks: dict[str, tuple[Any, np.ndarray]] = {}  # chunk id -> (Chunk, vector)

    def generation(self) -> int:
        return self._gen

    def snapshot_key(self) -> str | None:
        return None

    def committed(self) -> dict[str, Any]:
        return {s: info for s, (_, info) in self._docs.items()}

    def document(self, source: str) -> Any:
        got = self._docs.get(source)
        return got[0] if got else None

    def documents(self, sources: Any = None) -> list[Any]:
        names = sorted(self._docs) if sources is None else list(sources)
        return [self._docs[s][0] for s in names if s in self._docs]

    def query(self, vector: np.ndarray, n: int, filters: Any = None) -> list[tuple[str, float]]:
        rows = [(cid, c, v) for cid, (c, v) in self._chunks.items() if filters is None or filters.matches(c)]
        if not rows:
            return []
        mat = np.stack([v for _, _, v in rows])
        sims = mat @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-sims, kind="stable")[: max(1, n)]
        return [(rows[i][0], float(sims[i])) for i in order]

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        return {cid: self._chunks[cid][1] for cid in ids if cid in self._chunks}

    def get_chunks(self, ids: list[str]) -> dict[str, Any]:
        return {cid: self._chunks[cid][0] for cid in ids if cid in self._chunks}

    def iter_chunks(self, batch: int = 5000) -> Any:
        from dataclasses import replace

        return iter([replace(c) for c, _ in list(self._chunks.values())])

    def count_chunks(self) -> int:
        return len(self._chunks)

    def write(self, items: list[tuple[Any, list[Any], np.ndarray]], batch: int | None = None) -> None:
        import time

        from rag.types import SourceInfo

        for doc, chunks, vectors in items:
            for c, v in zip(chunks, np.asarray(vectors, dtype=np.float32).reshape(len(chunks), -1)):
                self._chunks[c.chunk_id] = (c, v)
            info = SourceInfo(
                doc.source,
                doc.title,
                doc.date,
                doc.date_note,
                doc.doc_id,
                len(chunks),
                len(doc.text),
                doc.format,
                time.time(),
                publisher=doc.publisher,
                author=doc.author,
                pages=len(doc.page_starts),
            )
            self._docs[doc.source] = (doc, info)
            self._drop(lambda c, doc=doc: c.source == doc.source and c.doc_id != doc.doc_id)
        self._bump()

    def forget(self, source: str) -> bool:
        existed = self._docs.pop(source, None) is not None
        self._drop(lambda c: c.source == source)
        if existed:
            self._bump()
        return existed

    def repair(self) -> list[str]:
        return []  # writes here are atomic: nothing is ever left half done

    def reset_chunks(self) -> None:
        self._chunks.clear()
        self.writes += 1

    def _drop(self, doomed: Any) -> None:
        for cid in [cid for cid, (c, _) in self._chunks.items() if doomed(c)]:
            del self._chunks[cid]

    def _bump(self) -> None:
        self.writes += 1
        self._gen += 1
