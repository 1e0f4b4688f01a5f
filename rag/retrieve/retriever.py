"""Hybrid retrieval: dense (Chroma) and BM25 rankings fused by weighted RRF.

The retriever keeps a snapshot of the committed chunks (and their BM25 index)
for the current store generation; it is rebuilt only when a report is added,
replaced or forgotten, so a query never re-reads the store. An embedded store
keeps a copy of its last snapshot on disk, so a new process loads it instead
of rebuilding it. Near-identical
passages (the same paragraph quoted twice, a syndicated press release) take
one slot of the top-k, not two.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.cache import LRU
from rag.config import Settings
from rag.retrieve.bm25 import LexicalIndex, folded_words
from rag.adapters.chroma import Store, date_ord
from rag.nlp.text import containment
from rag.types import Chunk, Hit

METHODS = ("hybrid", "dense", "bm25")
SHINGLE_CACHE = 4096  # chunks whose 3-gram sets are kept for de-duplication
GENERATION_TTL = 0.25  # seconds a generation read is trusted (one ``ask`` reads it twice)
EXACT_FILTERED = (
    600  # at most this many chunks pass a filter: score them exactly (~20 ms) from stored vectors
)
OVERFETCH_MAX = 2000  # rows of an unfiltered query that may be over-fetched and filtered here


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some sources and/or a publication date range (inclusive)."""

    sources: tuple[str, ...] | None = None
    date_from: str | None = None
    date_to: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.sources) or bool(self.date_from) or bool(self.date_to)

    def where(self) -> dict | None:
        """The same filter as a Chroma ``where`` clause."""
        clauses: list[dict] = []
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        lo, hi = date_ord(self.date_from), date_ord(self.date_to)
        if lo is not None:
            clauses.append({"date_ord": {"$gte": lo}})
        if hi is not None:
            clauses.append({"date_ord": {"$lte": hi}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def matches(self, chunk: Chunk) -> bool:
        if self.sources and chunk.source not in self.sources:
            return False
        if self.date_from or self.date_to:
            d = date_ord(chunk.date)
            if d is None:
                return False
            lo, hi = date_ord(self.date_from), date_ord(self.date_to)
            if (lo is not None and d < lo) or (hi is not None and d > hi):
                return False
        return True

    def describe(self) -> str:
        parts = []
        if self.sources:
            parts.append("reports " + ", ".join(self.sources))
        if self.date_from or self.date_to:
            parts.append(f"dated {self.date_from or '…'} to {self.date_to or '…'}")
        return "; ".join(parts) if parts else "all reports"


@dataclass
class Snapshot:
    """The committed chunks of one store generation, with their BM25 index."""

    generation: int
    chunks: dict[str, Chunk]
    lexical: LexicalIndex
    sources: int
    _shingles: LRU = field(default_factory=lambda: LRU(SHINGLE_CACHE))
    _columns: tuple[dict[str, int], np.ndarray, np.ndarray] | None = None

    def mask(self, filters: Filters) -> np.ndarray:
        """``filters.matches`` for every chunk in BM25 order, as array operations (1 ms, not 100, at 100k)."""
        if self._columns is None:
            rows = [self.chunks[cid] for cid in self.lexical.ids]
            codes: dict[str, int] = {}
            source_codes = np.array([codes.setdefault(c.source, len(codes)) for c in rows], dtype=np.int64)
            ords = [date_ord(c.date) for c in rows]
            self._columns = (
                codes,
                source_codes,
                np.array([-1 if d is None else d for d in ords], dtype=np.int64),
            )
        codes, sources, dates = self._columns
        keep = np.ones(len(sources), dtype=bool)
        if filters.sources:
            keep &= np.isin(sources, [codes[s] for s in filters.sources if s in codes])
        if filters.date_from or filters.date_to:
            lo, hi = date_ord(filters.date_from), date_ord(filters.date_to)
            keep &= dates >= 0
            if lo is not None:
                keep &= dates >= lo
            if hi is not None:
                keep &= dates <= hi
        return keep

    def shingles(self, chunk_id: str) -> set:
        """Word 3-grams of a chunk (as ``rag.nlp.text.shingles``), kept for the most recently used chunks.

        Bounded: a set of 3-gram tuples costs about 20 KB, so caching every chunk ever retrieved
        would grow a long-running process by gigabytes at 100k chunks.
        """
        got = self._shingles.get(chunk_id)
        if got is None:
            got = _shingles(self.chunks[chunk_id].text)
            self._shingles.put(chunk_id, got)
        return got


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    """``rag.nlp.text.shingles`` on the faster exact tokenizer of ``rag.retrieve.bm25``."""
    toks = folded_words(text)
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    return set(zip(*(toks[i:] for i in range(n))))


class SnapshotCache:
    """The last snapshot of an embedded store, saved in its folder so a new process need not rebuild it.

    Reading every chunk back from Chroma and tokenising it for BM25 takes most of a minute at 100k
    chunks; loading the saved copy takes a second or two. The copy is keyed by the store generation
    and both collections' ids (new ids when a collection is recreated), so a stale copy is never
    used; any problem reading it means "rebuild", never an error. Server mode keeps no copy: the
    client must not write next to a store it does not own.
    """

    FORMAT = 1

    def __init__(self, root: Path, ident: str) -> None:
        self.root = root
        self.ident = ident

    @classmethod
    def for_store(cls, store: Store, settings: Settings) -> "SnapshotCache | None":
        ids = [getattr(getattr(store, name, None), "id", None) for name in ("chunks", "docs")]
        if settings.server_mode or None in ids:
            return None
        return cls(Path(settings.store) / "dossier-snapshot" / settings.collection, f"{ids[0]}-{ids[1]}")

    def _folder(self, gen: int) -> Path:
        return self.root / f"v{self.FORMAT}-g{gen}-{self.ident}"

    def load(self, gen: int) -> Snapshot | None:
        folder = self._folder(gen)
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            chunks: dict[str, Chunk] = {}
            shared = _Shared()
            with open(folder / "chunks.jsonl", encoding="utf-8") as fh:  # line by line: no 100 MB string
                for line in fh:
                    cid, doc_id, source, index, start, end, text, title, date = json.loads(line)
                    chunks[cid] = Chunk(
                        cid,
                        shared(doc_id),
                        shared(source),
                        index,
                        start,
                        end,
                        text,
                        shared(title),
                        shared(date),
                    )
            lexical = LexicalIndex.load(folder / "lexical")
            if len(lexical) != len(chunks) or meta.get("chunks") != len(chunks):
                return None
            return Snapshot(gen, chunks, lexical, int(meta["sources"]))
        except Exception:  # missing, partial or foreign: rebuild instead
            return None

    def save(self, snap: Snapshot) -> None:
        if not snap.chunks:
            return
        tmp = self.root / f"tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            (tmp / "lexical").mkdir(parents=True)
            with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
                for c in snap.chunks.values():
                    row = [c.chunk_id, c.doc_id, c.source, c.index, c.start, c.end, c.text, c.title, c.date]
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            snap.lexical.save(tmp / "lexical")
            meta = {"chunks": len(snap.chunks), "sources": snap.sources, "generation": snap.generation}
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            tmp.rename(self._folder(snap.generation))  # whole folder appears at once
        except OSError:
            pass  # read-only folder, a full disk, or another process saved it first: no copy is fine
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        keep = self._folder(snap.generation).name
        try:
            entries = list(self.root.iterdir()) if self.root.is_dir() else []
        except OSError:
            return
        for old in entries:
            try:  # other processes rename and remove their own tmp folders while we look
                crashed = old.name.startswith("tmp-") and time.time() - old.stat().st_mtime > 3600
            except OSError:
                continue
            if (old.name != keep and not old.name.startswith("tmp-")) or crashed:
                shutil.rmtree(old, ignore_errors=True)


class _Shared:
    """One string object per distinct value (a report's title, source and id repeat in all its chunks)."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, value: str | None) -> str | None:
        return None if value is None else self._seen.setdefault(value, value)


class Retriever:
    """Answers ``search`` over a store with one embedder."""

    def __init__(self, store: Store, embedder, settings: Settings) -> None:
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
        writes = getattr(self.store, "writes", None)
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
        rows = self.store.query(vec, n + 10, where=filters.where())
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
