"""Ingest: loaded reports are chunked, embedded in batches and committed to the store.

Idempotent by construction: a report whose content id is already committed under
its source is left alone; an edited report replaces its old chunks; identical
content under a second name is not stored twice. Chunks of several small reports
are embedded together so the embedder sees full batches.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rag.errors import RagError
from rag.ports import Chunker, Embedder, Store
from rag.types import Chunk, Document, IngestReport, Progress

__all__ = ["IngestReport", "ingest_documents", "ingest_paths"]
_GROUP_CHUNKS = 256  # chunks embedded per group: big enough for full batches, small enough to commit often
_FIRST_GROUP_CHUNKS = 32  # one embedder batch: the embedder starts while the rest is still being chunked
# Rows per Chroma call while the embedder thread runs: embedded Chroma holds the GIL for a whole call,
# and the embedder thread needs it between its onnxruntime batches (a 256-row call stalled it ~1 s).
_WRITE_BATCH = 32


def ingest_documents(
    docs: list[Document],
    *,
    store: Store,
    embedder: Embedder,
    chunker: Chunker,
    paths: dict[str, str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    report: IngestReport | None = None,
) -> IngestReport:
    """Store ``docs``; ``paths`` maps a source to the file it came from (for messages)."""
    report = report or IngestReport()
    report.repaired.extend(store.repair())
    committed = store.committed()
    by_content = {info.doc_id: s for s, info in committed.items()}
    paths = paths or {}
    todo: list[tuple[Document, str]] = []
    for doc in docs:
        path = paths.get(doc.source, doc.source)
        old = committed.get(doc.source)
        if not force and old is not None and old.doc_id == doc.doc_id:
            report.unchanged.append({"path": path, "source": doc.source})
            continue
        twin = by_content.get(doc.doc_id)
        if not force and twin is not None and twin != doc.source:
            report.unchanged.append({"path": path, "source": doc.source, "duplicate_of": twin})
            continue
        by_content[doc.doc_id] = doc.source
        todo.append((doc, "updated" if old is not None else "added"))
    _write_groups(todo, store, embedder, chunker, paths, report, progress)
    return report


def _write_groups(
    todo: list[tuple[Document, str]],
    store: Store,
    embedder: Embedder,
    chunker: Chunker,
    paths: dict[str, str],
    report: IngestReport,
    progress: Progress | None,
) -> None:
    """Chunk, embed and commit reports in groups, embedding one group while the previous one is written.

    The embedder (onnxruntime releases the GIL) runs in one worker thread; chunking the next group and
    writing the previous one to Chroma happen meanwhile in this thread, so an ingest takes about as
    long as embedding alone. At most three groups are in memory (one embedding, one queued, one being
    chunked); each report is still committed only after all of its chunks are stored.
    """
    total, done = len(todo), 0
    group: list[tuple[Document, list[Chunk], str]] = []
    inflight: tuple[list, Future] | None = None

    def finish(item: tuple[list, Future]) -> None:
        nonlocal done
        _write_group(item[0], item[1], store, paths, report)
        done += len(item[0])
        if progress:
            progress(done, total, item[0][-1][0].source)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dossier-embed")
    try:
        for i, (doc, kind) in enumerate(todo):
            chunks = chunker.split(doc)
            if chunks:
                group.append((doc, chunks, kind))
            else:
                report.rejected.append(
                    {"path": paths.get(doc.source, doc.source), "reason": "no text to index after loading"}
                )
                done += 1
            # The first group is small so the embedder starts at once instead of waiting for 256 chunks.
            size = _GROUP_CHUNKS if inflight is not None else _FIRST_GROUP_CHUNKS
            if group and (sum(len(c) for _, c, _ in group) >= size or i == total - 1):
                future = pool.submit(embedder.embed, [c.text for _, chunks_, _ in group for c in chunks_])
                if inflight is not None:
                    finish(inflight)
                inflight, group = (group, future), []
        if inflight is not None:
            finish(inflight)
    finally:  # on an error, do not embed groups that will never be written
        pool.shutdown(wait=True, cancel_futures=True)


def _write_group(group, future: Future, store: Store, paths, report: IngestReport) -> None:
    try:
        vectors = np.asarray(future.result())
    except RagError as exc:
        for doc, _, _ in group:
            report.rejected.append(
                {"path": paths.get(doc.source, doc.source), "reason": f"embedding failed: {exc}"}
            )
        return
    items, offset = [], 0
    for doc, chunks, _ in group:
        items.append((doc, chunks, vectors[offset : offset + len(chunks)]))
        offset += len(chunks)
    store.write(items, batch=_WRITE_BATCH)
    for doc, chunks, kind in group:
        entry = {
            "path": paths.get(doc.source, doc.source),
            "source": doc.source,
            "title": doc.title,
            "date": doc.date,
            "chunks": len(chunks),
        }
        (report.added if kind == "added" else report.updated).append(entry)


def ingest_paths(
    paths: list[Path],
    *,
    store: Store,
    embedder: Embedder,
    chunker: Chunker,
    max_bytes: int,
    progress: Progress | None = None,
) -> IngestReport:
    """Load files and folders, then ingest every good one; bad ones are listed with reasons."""
    from rag.ingest.loading import load_paths

    loaded = load_paths([Path(p) for p in paths], max_bytes=max_bytes)
    report = IngestReport(rejected=[{"path": r.path, "reason": r.reason} for r in loaded.rejected])
    origin = loaded.origins
    return ingest_documents(
        loaded.documents,
        store=store,
        embedder=embedder,
        chunker=chunker,
        paths=origin,
        progress=progress,
        report=report,
    )
