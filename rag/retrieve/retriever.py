"""Hybrid retrieval: dense (the store's vector index) and BM25 rankings fused by weighted RRF.

The retriever searches a snapshot of the committed chunks (``rag.retrieve.snapshot``)
for the current store generation. Near-identical passages (the same paragraph
quoted twice, a syndicated press release) take one slot of the top-k, not two.
"""

from __future__ import annotations

import time

import numpy as np

from rag.config import Settings
from rag.nlp.text import containment
from rag.ports import Embedder, Store
from rag.retrieve.bm25 import LexicalIndex
from rag.retrieve.snapshot import Snapshot, SnapshotCache, _Shared
from rag.types import Filters, Hit

METHODS = ("hybrid", "dense", "bm25")
GENERATION_TTL = 0.25  # seconds a generation read is trusted (one ``ask`` reads it twice)
EXACT_FILTERED = (
    600  # at most this many chunks pass a filter: score them exactly (~20 ms) from stored vectors
)
OVERFETCH_MAX = 2000  # rows of an unfiltered query that may be over-fetched and filtered here


class Retriever:
    """Answers ``search`` over a store with one embedder."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._snap: Snapshot | None = None
        self._gen_seen: tuple[int, float, object] | None = None  # (generation, when read, store write count)

    def _generation(self) -> int:
        """The store generation; a read less than GENERATION_TTL old is reused unless this Store wrote since.

        Another process's write shows at most GENERATION_TTL seconds late; this process's own writes
        (through the same Store) show at once. It saves a Chroma round trip per ``ask``.
        """
        writes = self.store.writes
        now = time.monotonic()
        seen = self._gen_seen
        if seen is not None and writes is not None and seen[2] == writes and now - seen[1] < GENERATION_TTL:
            return seen[0]
        gen = self.store.generation()
        self._gen_seen = (gen, now, writes)
        return gen

    def snapshot(self) -> Snapshot:
        """The current snapshot, rebuilt (or read from the on-disk copy) when the store generation moved."""
        gen = self._generation()
        if self._snap is None or self._snap.generation != gen:
            cache = SnapshotCache.for_store(self.store, self.settings)
            snap = cache.load(gen) if cache else None
            if snap is None:
                snap = self._build(gen)
                if cache:
                    cache.save(snap)
            self._snap = snap
        return self._snap

    def _build(self, gen: int) -> Snapshot:
        committed = {s: i.doc_id for s, i in self.store.committed().items()}
        shared = _Shared()
        chunks = []
        for c in self.store.iter_chunks():
            if committed.get(c.source) == c.doc_id:
                c.doc_id, c.source, c.title, c.date = (
                    shared(c.doc_id),
                    shared(c.source),
                    shared(c.title),
                    shared(c.date),
                )
                chunks.append(c)
        chunks.sort(key=lambda c: (c.source, c.index))
        return Snapshot(gen, {c.chunk_id: c for c in chunks}, LexicalIndex(chunks), len(committed))

    def search(
        self, query: str, *, top_k: int | None = None, filters: Filters | None = None, method: str = "hybrid"
    ) -> list[Hit]:
        """The top-k passages for ``query``, best first, near-duplicates removed."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        top_k = top_k or self.settings.top_k
        filters = filters or Filters()
        snap = self.snapshot()
        if not snap.chunks or not query.strip():
            return []
        n = max(self.settings.candidates, top_k * 3)
        dense = self._dense(query, n, filters, snap) if method != "bm25" else []
        lexical = self._lexical(query, n, filters, snap) if method != "dense" else []
        fused = self._fuse(dense, lexical, snap)
        return self._dedupe(fused, top_k, snap, dense, lexical)

    def _dense(self, query: str, n: int, filters: Filters, snap: Snapshot) -> list[tuple[str, float]]:
        vec = np.asarray(self.embedder.embed_query(query), dtype=np.float32)
        if filters.active:
            return self._dense_filtered(vec, n, filters, snap)
        # Ask for extra rows: uncommitted leftovers of an interrupted ingest are dropped below.
        rows = self.store.query(vec, n + 10)
        return [(cid, s) for cid, s in rows if cid in snap.chunks][:n]

    def _dense_filtered(
        self, vec: np.ndarray, n: int, filters: Filters, snap: Snapshot
    ) -> list[tuple[str, float]]:
        """Dense candidates among the chunks ``filters`` keeps.

        A metadata ``where`` inside Chroma's vector query scans the metadata of the whole store
        (about 150 ms at 100k chunks), so the snapshot decides which chunks pass, then: when
        they are a large share, an over-fetched unfiltered query is filtered here (the same
        top n whenever n of them are among its rows: every better allowed chunk ranks higher,
        so it is among them too); when they are few, they are scored exactly from their stored
        vectors; only the middle ground falls back to ``where``.
        """
        ids = snap.lexical.ids
        allowed = [ids[i] for i in np.flatnonzero(snap.mask(filters))]
        if not allowed:
            return []
        fetch = int((n + 10) * len(snap.chunks) / len(allowed) * 2)
        if fetch <= OVERFETCH_MAX:
            keep = set(allowed)
            rows = [(cid, s) for cid, s in self.store.query(vec, fetch) if cid in keep]
            if len(rows) >= min(n, len(allowed)):
                return rows[:n]
        if len(allowed) <= EXACT_FILTERED:
            stored = self.store.vectors(allowed)
            if not stored:
                return []
            keys = list(stored)
            mat = np.stack([stored[k] for k in keys])
            sims = mat @ vec / np.maximum(np.linalg.norm(mat, axis=1) * np.linalg.norm(vec), 1e-12)
            order = np.argsort(-sims, kind="stable")[:n]
            return [(keys[i], float(sims[i])) for i in order]
        rows = self.store.query(vec, n + 10, filters)
        return [(cid, s) for cid, s in rows if cid in snap.chunks][:n]

    def _lexical(self, query: str, n: int, filters: Filters, snap: Snapshot) -> list[tuple[str, float]]:
        mask = snap.mask(filters) if filters.active else None
        return snap.lexical.search(query, n, mask)

    def _fuse(self, dense: list, lexical: list, snap: Snapshot) -> list[tuple[float, str, int, str]]:
        """Weighted reciprocal-rank fusion: (-score, source, index, chunk id) for every candidate, best first.

        Plain tuples, not ``Hit`` objects: only the few that survive ``_dedupe`` become hits.
        """
        k, wd, wl = self.settings.rrf_k, self.settings.dense_weight, self.settings.lexical_weight
        scores: dict[str, float] = {}
        for rank, (cid, _) in enumerate(dense, 1):
            scores[cid] = wd / (k + rank)
        for rank, (cid, _) in enumerate(lexical, 1):
            scores[cid] = scores.get(cid, 0.0) + wl / (k + rank)
        chunks = snap.chunks
        return sorted((-s, chunks[cid].source, chunks[cid].index, cid) for cid, s in scores.items())

    def _dedupe(self, ranked: list, top_k: int, snap: Snapshot, dense: list, lexical: list) -> list[Hit]:
        """The first ``top_k`` of ``ranked`` that are not near-duplicates of one kept before them."""
        kept: list[Hit] = []
        kept_shingles: list[set] = []
        dense_at = {cid: (r, sim) for r, (cid, sim) in enumerate(dense, 1)}
        lexical_at = {cid: (r, sc) for r, (cid, sc) in enumerate(lexical, 1)}
        for neg, _, _, cid in ranked:
            sh = snap.shingles(cid)
            if any(containment(sh, other) >= self.settings.dedupe_threshold for other in kept_shingles):
                continue
            d, lx = dense_at.get(cid), lexical_at.get(cid)
            kept.append(
                Hit(
                    snap.chunks[cid],
                    round(-neg, 6),
                    dense_rank=d[0] if d else None,
                    dense_score=round(d[1], 4) if d else None,
                    lexical_rank=lx[0] if lx else None,
                    lexical_score=round(lx[1], 4) if lx else None,
                )
            )
            kept_shingles.append(sh)
            if len(kept) == top_k:
                break
        return kept
