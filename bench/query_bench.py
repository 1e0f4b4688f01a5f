"""Stores of 1k to 100k chunks, and what querying them costs. Each step runs in a fresh process.

``python -m bench.query_bench build --work W --chunks N --store DIR``
    Recombines the base set saved by ``bench.ingest_bench`` (real chunks and their real vectors) into
    N chunks of new documents and writes them through ``rag.adapters.chroma.ChromaStore.write``, the call ingest makes,
    so the store holds exactly what an ingest of those documents would (see ``bench.corpus.synthesize``).
``python -m bench.query_bench cold --store DIR [--server-port P]``
    Process start to first answer: imports, ``build_pipeline``, the first ``ask``.
``python -m bench.query_bench latency --store DIR [--server-port P] --queries Q``
    Warm p50/p95 of ``search`` and of extractive ``ask`` over unseen real questions, with peak RSS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.measure import emit, folder_mb, load, peak_rss_mb, rss_mb, stats

WRITE_GROUP = 1024  # chunks per Store.write while building (ingest uses 256; the stored rows are the same)


def _settings(store: Path, port: int | None):
    from rag.config import Settings

    if port:
        return Settings(
            store=store.parent / f"{store.name}-unused-client-folder",
            chroma_host="127.0.0.1",
            chroma_port=port,
        )
    return Settings(store=store)


def build(work: Path, n: int, store_dir: Path, seed: int) -> dict[str, Any]:
    import numpy as np

    from bench import corpus
    from rag.adapters.chroma import ChromaStore, build_chroma_client
    from rag.adapters.embedders import build_embedder

    meta = json.loads((work / "base-chunks.json").read_text(encoding="utf-8"))
    vectors = np.load(work / "base-vectors.npy")
    base = [corpus.BaseChunk(**c) for c in meta["chunks"]]
    settings = _settings(store_dir, None)
    embedder = build_embedder(settings)  # for count_tokens, and to check the base set's embedder
    if embedder.name != meta["embedder"]:
        raise SystemExit(
            f"base set was embedded with {meta['embedder']}, the configured embedder is {embedder.name}"
        )
    client, location = build_chroma_client(settings)
    store = ChromaStore(
        client, prefix=settings.collection, embedder_name=embedder.name, dim=embedder.dim, location=location
    )
    t0 = time.perf_counter()
    written, docs, t_write, group, next_note = 0, 0, 0.0, [], n / 10
    items = corpus.synthesize(base, vectors, n, seed=seed, count_tokens=embedder.count_tokens)
    for doc, chunks, vecs in items:
        group.append((doc, chunks, vecs))
        docs += 1
        if sum(len(c) for _, c, _ in group) >= WRITE_GROUP:
            written, t_write = _flush(store, group, written, t_write)
            group = []
            if written >= next_note:
                print(
                    f"[build {n}] {written} chunks, {time.perf_counter() - t0:.0f} s, load {load()}",
                    flush=True,
                )
                next_note += n / 10
    written, t_write = _flush(store, group, written, t_write)
    total = time.perf_counter() - t0
    assert store.count_chunks() == written
    return {
        "chunks": written,
        "documents": docs,
        "seconds": round(total, 2),
        "store_write_s": round(t_write, 2),
        "write_chunks_per_s": round(written / t_write, 1),
        "base_chunks": len(base),
        "reuse_per_base_chunk": round(written / len(base), 1),
        "store_mb": folder_mb(store_dir),
        "peak_rss_mb": peak_rss_mb(),
        "load": load(),
    }


def _flush(store, group, written: int, t_write: float) -> tuple[int, float]:
    if not group:
        return written, t_write
    t0 = time.perf_counter()
    store.write(group)
    return written + sum(len(c) for _, c, _ in group), t_write + time.perf_counter() - t0


def cold(store_dir: Path, port: int | None, question: str) -> dict[str, Any]:
    import psutil

    t0 = time.perf_counter()
    from rag.pipeline import build_pipeline

    t1 = time.perf_counter()
    pipe = build_pipeline(_settings(store_dir, port))
    t2 = time.perf_counter()
    answer = pipe.ask(question)
    t3 = time.perf_counter()
    since_start = time.time() - psutil.Process().create_time()
    return {
        "import_s": round(t1 - t0, 3),
        "build_pipeline_s": round(t2 - t1, 3),
        "first_ask_s": round(t3 - t2, 3),
        "process_start_to_answer_s": round(since_start, 2),
        "answer_timings": answer.timings,
        "snapshot_on_disk_mb": folder_mb(store_dir / "dossier-snapshot"),
        "peak_rss_mb": peak_rss_mb(),
        "load": load(),
    }


def latency(store_dir: Path, port: int | None, n: int, warm_n: int) -> dict[str, Any]:
    from bench import corpus
    from rag.pipeline import build_pipeline
    from rag.retrieve.retriever import Filters

    pipe = build_pipeline(_settings(store_dir, port))
    t0 = time.perf_counter()
    pipe.search("warm up")  # loads (or builds) the snapshot
    first = time.perf_counter() - t0
    for q in corpus.questions(warm_n, skip=corpus.WARM_QUESTIONS):
        pipe.ask(q)
    search_qs, ask_qs = corpus.questions(n, skip=0), corpus.questions(n, skip=n)
    res: dict[str, Any] = {
        "chunks": pipe.store.count_chunks(),
        "first_search_s": round(first, 2),
        "load_start": load(),
    }
    times = []
    for q in search_qs:
        t = time.perf_counter()
        pipe.search(q)
        times.append(time.perf_counter() - t)
    res["search"] = stats(times)
    times, parts, abstained = [], {"retrieve": [], "extract": []}, 0
    for q in ask_qs:
        t = time.perf_counter()
        answer = pipe.ask(q)
        times.append(time.perf_counter() - t)
        abstained += answer.abstained
        for key in parts:
            if key in answer.timings:
                parts[key].append(answer.timings[key])
    res["ask"] = stats(times)
    res["ask"]["stage_median_ms"] = {k: round(statistics.median(v) * 1000, 1) for k, v in parts.items() if v}
    res["ask"]["abstained_share"] = round(abstained / max(1, len(ask_qs)), 3)
    times = []
    for q in search_qs[:30]:  # the same questions again: the query vector comes from the cache
        t = time.perf_counter()
        pipe.search(q)
        times.append(time.perf_counter() - t)
    res["search_repeated"] = stats(times)
    times = []
    date_filter = Filters(date_from="2023-10-01", date_to="2023-12-31")
    for q in ask_qs[:30]:
        t = time.perf_counter()
        pipe.search(q, filters=date_filter)
        times.append(time.perf_counter() - t)
    res["search_date_filter"] = stats(times)
    res.update(peak_rss_mb=peak_rss_mb(), rss_mb=rss_mb(), load_end=load())
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["build", "cold", "latency"])
    ap.add_argument("--work", type=Path)
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--server-port", type=int, default=None)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--warm", type=int, default=10)
    ap.add_argument("--question", default=None, help="default: a real question no timed set uses")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.step == "build":
        result = build(args.work, args.chunks, args.store, args.seed)
    elif args.step == "cold":
        from bench import corpus

        question = args.question or corpus.questions(1, skip=corpus.COLD_QUESTION)[0]
        result = cold(args.store, args.server_port, question)
    else:
        result = latency(args.store, args.server_port, args.queries, args.warm)
    emit(result, args.out)


if __name__ == "__main__":
    main()
