"""The Chroma store: chunks with our own vectors, and one record per report.

Two collections: ``<prefix>_chunks`` (cosine HNSW, one row per chunk, our vectors
always passed in so Chroma never falls back to its downloading embedder) and
``<prefix>_docs`` (one row per report holding its full stored text, plus a
``__meta__`` row with the store generation and the embedder that built it).

Writes follow a small commit protocol so that an interrupted ingest never shows
a partial report and a rerun completes it:

1. a ``pending:`` record names the source and the new content id;
2. the new chunks are upserted (ids derive from content, so reruns overwrite);
3. the report record is upserted: this is the commit point;
4. chunks of older versions are deleted, then the pending record.

Readers only trust chunks whose ``doc_id`` equals the committed ``doc_id`` of
their source, so orphans of an interrupted write are invisible until
``repair()`` (run at the start of every ingest) deletes them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from rag.config import Settings
from rag.errors import EmbedderMismatchError, StoreError
from rag.nlp.dates import date_ord
from rag.types import Chunk, Document, Filters, SourceInfo

_META_ID = "__meta__"
_PENDING = "pending:"
_ONE = [1.0]  # the docs collection is looked up by id only; Chroma still wants a vector


def source_key(source: str) -> str:
    """Record id of a source name (names may hold any characters)."""
    return "src:" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:20]


def build_chroma_client(settings: Settings) -> tuple[Any, str]:
    """A Chroma client (embedded folder or server) and a location string for messages."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        location = f"http://{settings.chroma_host}:{settings.chroma_port}"
        try:
            client = chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
            client.heartbeat()
        except Exception as exc:
            raise StoreError(
                f"Cannot reach the Chroma server at {location}: {exc}",
                hint=f"Start it with `chroma run --path DIR --host {settings.chroma_host} "
                f"--port {settings.chroma_port}` (DIR: its data folder), or unset RAG_CHROMA_HOST "
                "to use the local folder store.",
            ) from exc
        return client, location
    path = Path(settings.store)
    try:
        path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as exc:
        raise StoreError(
            f"Cannot open the store folder {path}: {exc}", hint="Check RAG_STORE / --store."
        ) from exc
    return client, str(path)


def open_chroma_store(
    settings: Settings, embedder_name: str, dim: int, *, rebuild: bool = False
) -> ChromaStore:
    """The Chroma store of ``settings`` for one embedder (embedded folder or server).

    With ``rebuild=True`` a store built by another embedder is opened for rebuilding
    instead of refused: its chunk index is dropped, its reports' texts are kept.
    """
    client, location = build_chroma_client(settings)
    try:
        return ChromaStore(
            client, prefix=settings.collection, embedder_name=embedder_name, dim=dim, location=location
        )
    except EmbedderMismatchError:
        if not rebuild:
            raise
        client.delete_collection(f"{settings.collection}_chunks")
        return ChromaStore(
            client, prefix=settings.collection, embedder_name=embedder_name, dim=dim, location=location
        )


def where_clause(filters: Filters | None) -> dict | None:
    """``filters`` as a Chroma ``where`` clause (None when it keeps everything)."""
    if filters is None:
        return None
    clauses: list[dict] = []
    if filters.sources:
        clauses.append({"source": {"$in": list(filters.sources)}})
    lo, hi = date_ord(filters.date_from), date_ord(filters.date_to)
    if lo is not None:
        clauses.append({"date_ord": {"$gte": lo}})
    if hi is not None:
        clauses.append({"date_ord": {"$lte": hi}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaStore:
    """Reports and chunks in Chroma, built for one embedder (implements ``rag.ports.Store``)."""

    def __init__(self, client: Any, *, prefix: str, embedder_name: str, dim: int, location: str) -> None:
        self.client = client
        self.location = location
        self.embedder_name = embedder_name
        self.dim = dim
        self.writes = 0  # committed writes through this object (lets a reader skip re-reading the generation)
        self._in_process = not location.startswith(("http://", "https://"))  # embedded Chroma holds the GIL
        self._chunks_name = f"{prefix}_chunks"
        self._docs_name = f"{prefix}_docs"
        self._open()

    def _open(self) -> None:
        try:
            self.chunks = self.client.get_or_create_collection(
                self._chunks_name,
                embedding_function=None,
                metadata={"embedder": self.embedder_name, "dim": self.dim},
                configuration={"hnsw": {"space": "cosine"}},
            )
            self.docs = self.client.get_or_create_collection(self._docs_name, embedding_function=None)
        except Exception as exc:  # chromadb raises many types; all mean "cannot open"
            raise StoreError(f"Cannot open the Chroma store at {self.location}: {exc}") from exc
        self._check_embedder()

    def snapshot_key(self) -> str | None:
        """Both collections' ids (new ones when a collection is recreated); None for a server store,
        whose client must not write next to a store it does not own."""
        if not self._in_process:
            return None
        return f"{self.chunks.id}-{self.docs.id}"

    # --- identity ---------------------------------------------------------------

    def _check_embedder(self) -> None:
        meta = self.chunks.metadata or {}
        built_with, built_dim = meta.get("embedder"), meta.get("dim")
        if built_with and (built_with != self.embedder_name or int(built_dim or 0) != self.dim):
            raise EmbedderMismatchError(
                f"The store at {self.location} was built with embedder {built_with} (dimension {built_dim}), "
                f"but the configured embedder is {self.embedder_name} (dimension {self.dim}).",
                hint=(
                    f"Either set RAG_EMBEDDER={built_with} to use it as it is, or rebuild it for the new "
                    f"embedder with `rag reindex` (re-embeds every stored report; the original files are not needed)."
                ),
            )

    def generation(self) -> int:
        """A number that changes whenever any report is added, replaced or forgotten."""
        got = self._call(self.docs.get, ids=[_META_ID], include=["metadatas"])
        metas = got.get("metadatas") or []
        return int(metas[0].get("generation", 0)) if metas else 0

    def _bump(self) -> None:
        self.writes += 1
        gen = self.generation() + 1
        self._call(
            self.docs.upsert,
            ids=[_META_ID],
            embeddings=[_ONE],
            metadatas=[{"generation": gen, "embedder": self.embedder_name, "dim": self.dim}],
            documents=[""],
        )

    # --- reading ------------------------------------------------------------------

    def committed(self) -> dict[str, SourceInfo]:
        """Every committed report by source name."""
        out: dict[str, SourceInfo] = {}
        for rid, meta in self._iter_docs(include=["metadatas"]):
            if rid == _META_ID or rid.startswith(_PENDING):
                continue
            info = _info(meta)
            out[info.source] = info
        return out

    def document(self, source: str) -> Document | None:
        """The stored report (full normalised text), or None."""
        got = self._call(self.docs.get, ids=[source_key(source)], include=["metadatas", "documents"])
        if not got["ids"]:
            return None
        meta, text = got["metadatas"][0], got["documents"][0]
        return Document(
            source=meta["source"],
            title=meta.get("title", ""),
            text=text,
            date=meta.get("date") or None,
            date_note=meta.get("date_note", ""),
            format=meta.get("format", ""),
            doc_id=meta["doc_id"],
            publisher=meta.get("publisher") or None,
            author=meta.get("author") or None,
            page_starts=_ints(meta.get("page_starts")),
        )

    def documents(self, sources: Iterable[str] | None = None) -> list[Document]:
        """Several stored reports (all when ``sources`` is None), in source order."""
        names = sorted(self.committed()) if sources is None else list(sources)
        docs = [self.document(s) for s in names]
        return [d for d in docs if d is not None]

    def query(self, vector: np.ndarray, n: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity, best first."""
        # No count() first: Chroma 1.5 returns fewer rows (none for an empty collection) when n is
        # larger, and the extra round trip cost as much as the query itself.
        res = self._call(
            self.chunks.query,
            query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()],
            n_results=max(1, n),
            where=where_clause(filters),
            include=["distances"],
        )
        return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0])]

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored embeddings by chunk id (missing ids are left out)."""
        if not ids:
            return {}
        got = self._call(self.chunks.get, ids=ids, include=["embeddings"])
        return {cid: np.asarray(v, dtype=np.float32) for cid, v in zip(got["ids"], got["embeddings"])}

    def get_chunks(self, ids: list[str]) -> dict[str, Chunk]:
        """Chunks by id (missing ids are left out)."""
        if not ids:
            return {}
        got = self._call(self.chunks.get, ids=ids, include=["documents", "metadatas"])
        return {
            cid: _chunk(cid, doc, meta)
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"])
        }

    def iter_chunks(self, batch: int = 5000) -> Iterator[Chunk]:
        """Every stored chunk (committed or not), in pages."""
        offset = 0
        while True:
            got = self._call(self.chunks.get, include=["documents", "metadatas"], limit=batch, offset=offset)
            if not got["ids"]:
                return
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                yield _chunk(cid, doc, meta)
            offset += len(got["ids"])

    def count_chunks(self) -> int:
        """Rows in the chunk collection."""
        return int(self._call(self.chunks.count))

    # --- writing ------------------------------------------------------------------

    def begin(self, doc: Document) -> None:
        """Step 1: note that ``doc`` is being written, so a crash can be repaired."""
        self._call(
            self.docs.upsert,
            ids=[_PENDING + source_key(doc.source)],
            embeddings=[_ONE],
            documents=[""],
            metadatas=[{"source": doc.source, "doc_id": doc.doc_id, "started": time.time()}],
        )

    def add_chunks(self, chunks: list[Chunk], vectors: np.ndarray, batch: int | None = None) -> None:
        """Step 2: upsert chunks with their vectors, in batches Chroma accepts (or of ``batch``)."""
        step = max(1, min(batch or 5000, 5000, _max_batch(self.client)))
        for i in range(0, len(chunks), step):
            part = chunks[i : i + step]
            self._call(
                self.chunks.upsert,
                ids=[c.chunk_id for c in part],
                embeddings=np.asarray(vectors[i : i + step], dtype=np.float32),
                documents=[c.text for c in part],
                metadatas=[_chunk_meta(c) for c in part],
            )

    def commit(self, doc: Document, n_chunks: int) -> None:
        """Step 3 and 4: record the report, drop older versions' chunks, clear the pending note."""
        self._call(
            self.docs.upsert,
            ids=[source_key(doc.source)],
            embeddings=[_ONE],
            documents=[doc.text],
            metadatas=[_doc_meta(doc, n_chunks)],
        )
        self._call(
            self.chunks.delete, where={"$and": [{"source": doc.source}, {"doc_id": {"$ne": doc.doc_id}}]}
        )
        self._call(self.docs.delete, ids=[_PENDING + source_key(doc.source)])
        self._bump()

    def write(self, items: list[tuple[Document, list[Chunk], np.ndarray]], batch: int | None = None) -> None:
        """Steps 1 to 4 for several reports at once, in about seven Chroma calls in all.

        The same protocol as ``begin``/``add_chunks``/``commit`` per report, batched: every Chroma
        write costs tens of milliseconds whatever its size, so seven calls per report made the
        store, not the embedder, the bottleneck of an ingest of many small reports. ``batch`` caps
        the rows per call to an embedded store: embedded Chroma holds the GIL for a whole call, so an
        ingest that embeds in another thread writes in short calls to let that thread run between
        them. A server's calls do not hold the GIL and each is a round trip, so they are not split.
        """
        if not items:
            return
        batch = batch if self._in_process else None
        now = time.time()
        pending = [_PENDING + source_key(doc.source) for doc, _, _ in items]
        self._upsert_docs(
            pending,
            [""] * len(items),
            [{"source": doc.source, "doc_id": doc.doc_id, "started": now} for doc, _, _ in items],
        )
        chunks = [c for _, cs, _ in items for c in cs]
        vectors = [np.asarray(v, dtype=np.float32).reshape(len(cs), -1) for _, cs, v in items if len(cs)]
        if chunks:
            self.add_chunks(chunks, np.concatenate(vectors), batch)
        self._upsert_docs(
            [source_key(doc.source) for doc, _, _ in items],
            [doc.text for doc, _, _ in items],
            [_doc_meta(doc, len(cs)) for doc, cs, _ in items],
            batch and max(1, batch // 8),
        )
        self._delete_stale({doc.source: doc.doc_id for doc, _, _ in items})
        self._call(self.docs.delete, ids=pending)
        self._bump()

    def _upsert_docs(
        self, ids: list[str], texts: list[str], metas: list[dict], batch: int | None = None
    ) -> None:
        step = max(1, min(batch or 5000, 5000, _max_batch(self.client)))
        for i in range(0, len(ids), step):
            n = len(ids[i : i + step])
            self._call(
                self.docs.upsert,
                ids=ids[i : i + step],
                embeddings=[_ONE] * n,
                documents=texts[i : i + step],
                metadatas=metas[i : i + step],
            )

    def _delete_stale(self, current: dict[str, str]) -> None:
        """Delete chunks of these sources whose doc_id is not the committed one (a read, and a write only if any)."""
        names = list(current)
        stale: list[str] = []
        for i in range(0, len(names), 500):
            got = self._call(
                self.chunks.get, where={"source": {"$in": names[i : i + 500]}}, include=["metadatas"]
            )
            stale += [
                cid for cid, m in zip(got["ids"], got["metadatas"]) if m["doc_id"] != current[m["source"]]
            ]
        for i in range(0, len(stale), 5000):
            self._call(self.chunks.delete, ids=stale[i : i + 5000])

    def forget(self, source: str) -> bool:
        """Remove a report and its chunks; False when it was not stored."""
        existed = bool(self._call(self.docs.get, ids=[source_key(source)])["ids"])
        self._call(self.docs.delete, ids=[source_key(source)])
        self._call(self.chunks.delete, where={"source": source})
        self._call(self.docs.delete, ids=[_PENDING + source_key(source)])
        if existed:
            self._bump()
        return existed

    def repair(self) -> list[str]:
        """Delete chunks left by interrupted writes; returns the sources repaired."""
        committed = {s: i.doc_id for s, i in self.committed().items()}
        repaired = []
        for rid, meta in self._iter_docs(include=["metadatas"]):
            if not rid.startswith(_PENDING):
                continue
            source = meta["source"]
            if source in committed:
                where = {"$and": [{"source": source}, {"doc_id": {"$ne": committed[source]}}]}
            else:
                where = {"source": source}
            self._call(self.chunks.delete, where=where)
            self._call(self.docs.delete, ids=[rid])
            repaired.append(source)
        return repaired

    def drop_chunks(self) -> None:
        """Delete the chunk collection (for ``reindex`` with another embedder)."""
        self.writes += 1
        self._call(self.client.delete_collection, self._chunks_name)

    def reset_chunks(self) -> None:
        """Drop every chunk and reopen an empty chunk collection for this embedder (``reindex``)."""
        self.drop_chunks()
        self._open()

    # --- helpers ------------------------------------------------------------------

    def _iter_docs(self, include: list[str], batch: int = 1000) -> Iterator[tuple[str, dict]]:
        offset = 0
        while True:
            got = self._call(self.docs.get, include=include, limit=batch, offset=offset)
            if not got["ids"]:
                return
            yield from zip(got["ids"], got["metadatas"])
            offset += len(got["ids"])

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a Chroma call, turning its failures into a StoreError a user can act on."""
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"The Chroma store at {self.location} failed: {type(exc).__name__}: {exc}",
                hint=_failure_hint(self.location, exc),
            ) from exc


def _failure_hint(location: str, exc: Exception) -> str:
    """What to do when a store call fails: for a server, how to (re)start it on the same address."""
    if not location.startswith(("http://", "https://")):
        if "hnsw segment reader" in str(exc):  # another process wrote the folder while this one had it open
            return (
                "Another process (e.g. `rag ingest`) changed this store folder while this one had it open; "
                "a store folder is not shared live between processes. Restart this program, or share the "
                "store through a Chroma server (RAG_CHROMA_HOST)."
            )
        return "Check the store folder (RAG_STORE / --store): it must be readable, writable and not full."
    parts = urlsplit(location)
    return (
        f"Check that the Chroma server at {location} is running and reachable; start it with "
        f"`chroma run --path DIR --host {parts.hostname} --port {parts.port}` (DIR: its data folder), "
        "then try again."
    )


def _max_batch(client: Any) -> int:
    try:
        return int(client.get_max_batch_size())
    except Exception:
        return 5000


def _doc_meta(doc: Document, n_chunks: int) -> dict[str, Any]:
    return {
        "source": doc.source,
        "title": doc.title[:500],
        "date": doc.date or "",
        "date_note": doc.date_note,
        "format": doc.format,
        "doc_id": doc.doc_id,
        "chunks": n_chunks,
        "chars": len(doc.text),
        "ingested_at": time.time(),
        "publisher": doc.publisher or "",
        "author": doc.author or "",
        "page_starts": ",".join(map(str, doc.page_starts)),
    }


def _chunk_meta(c: Chunk) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "doc_id": c.doc_id,
        "source": c.source,
        "index": c.index,
        "start": c.start,
        "end": c.end,
        "title": c.title[:300],
    }
    if c.publisher:
        meta["publisher"] = c.publisher
    if c.page is not None:
        meta["page"] = c.page
        meta["page_breaks"] = ",".join(map(str, c.page_breaks))
    if c.date:
        meta["date"] = c.date
        ordinal = date_ord(c.date)
        if ordinal is not None:
            meta["date_ord"] = ordinal
    return meta


def _chunk(cid: str, text: str, meta: dict) -> Chunk:
    return Chunk(
        chunk_id=cid,
        doc_id=meta["doc_id"],
        source=meta["source"],
        index=int(meta["index"]),
        start=int(meta["start"]),
        end=int(meta["end"]),
        text=text,
        title=meta.get("title", ""),
        date=meta.get("date") or None,
        publisher=meta.get("publisher") or None,
        page=int(meta["page"]) if meta.get("page") is not None else None,
        page_breaks=_ints(meta.get("page_breaks")),
    )


def _ints(csv: str | None) -> list[int]:
    """A comma-separated list of offsets as stored in metadata (Chroma holds scalars only)."""
    return [int(x) for x in csv.split(",")] if csv else []


def _info(meta: dict) -> SourceInfo:
    return SourceInfo(
        source=meta["source"],
        title=meta.get("title", ""),
        date=meta.get("date") or None,
        date_note=meta.get("date_note", ""),
        doc_id=meta["doc_id"],
        chunks=int(meta.get("chunks", 0)),
        chars=int(meta.get("chars", 0)),
        format=meta.get("format", ""),
        ingested_at=float(meta.get("ingested_at", 0)),
        publisher=meta.get("publisher") or None,
        author=meta.get("author") or None,
        pages=len(_ints(meta.get("page_starts"))),
    )
