"""Ingest throughput of the whole pipeline against the raw embedder on the same texts, in one process.

Run by ``bench.run`` (``python -m bench.ingest_bench --work DIR --chunks N [--server-port P]``). Steps:

1. the first public articles that make ``N`` chunks are written as .txt report files;
2. the raw embedder embeds exactly the chunk texts the pipeline will make (one ``embed`` call), then
   ``Pipeline.ingest(folder)`` loads, chunks, embeds and stores the files in a fresh embedded store,
   then the LangChain baseline ingests the same files, then the raw embedder runs again. The pipeline's
   overhead is its throughput over the mean of the two raw passes, which bracket it in time;
3. the same folder goes through the pipeline into a Chroma server (when a port is given), and the same
   unseen questions go through every system, interleaved query by query;
4. the raw vectors are saved as the base set that ``bench.query_bench build`` recombines into large
   stores, and a sample of recombined chunks is embedded for real to say how close their vectors are.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import corpus
from bench.measure import emit, folder_mb, load, peak_rss_mb, stats


def _timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _clear_query_cache(embedder: Any) -> None:
    """Forget cached query vectors so each system's timed pass embeds every question itself."""
    cache = getattr(embedder, "_query_cache", None)
    if cache is not None:
        cache.clear()


def _compare(systems: dict[str, Any], queries: list[str], embedder: Any, warm: list[str]) -> dict[str, Any]:
    """Latency of each system on the same questions, interleaved query by query in rotating order.

    Interleaving keeps a change in the machine's load from favouring whichever system ran last; the
    query-vector cache is cleared before every call so each system embeds every question itself.
    """
    names = list(systems)
    for q in warm:
        for name in names:
            systems[name](q)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, q in enumerate(queries):
        for name in names[i % len(names):] + names[: i % len(names)]:
            _clear_query_cache(embedder)
            t0 = time.perf_counter()
            systems[name](q)
            times[name].append(time.perf_counter() - t0)
    return {name: {**stats(ts), "load": load()} for name, ts in times.items()}


def _instrument(store: Any) -> dict[str, float]:
    """Count time spent in ``store.write`` (the Chroma side of an ingest)."""
    spent = {"store_write_s": 0.0}
    original = store.write

    def write(items, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(items, *args, **kwargs)
        finally:
            spent["store_write_s"] += time.perf_counter() - t0

    store.write = write
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--chunks", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--server-port", type=int, default=None)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from rag.config import Settings
    from rag.loading import load_paths
    from rag.pipeline import build_pipeline

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"load_start": load(), "target_chunks": args.chunks}
    settings = Settings(store=work / "ingest-store")
    pipe, t_build = _timed(build_pipeline, settings)
    emb = pipe.embedder
    res["embedder"] = {"name": emb.name, "dim": emb.dim, "batch_size": getattr(emb, "batch_size", None),
                       "build_pipeline_s": round(t_build, 3)}

    # --- the corpus: report files, and the chunk texts the pipeline will embed ---------------------
    arts, docs, chunks = corpus.real_corpus(args.chunks, pipe.chunker)
    folder = work / "corpus"
    paths = corpus.write_files(arts, folder)
    loaded, t_load = _timed(load_paths, [folder], max_bytes=50 * 2**20)
    by_source = {d.source: d for d in loaded.documents}
    file_docs = [by_source[a.source] for a in arts]  # the files as ingest loads them
    per_doc, t_chunk = _timed(lambda: [pipe.chunker.split(d) for d in file_docs])
    flat = [c for cs in per_doc for c in cs]
    texts = [c.text for c in flat]
    tokens = [emb.count_tokens(t) for t in texts]
    res["corpus"] = {"files": len(paths), "chunks": len(texts), "chars": sum(map(len, texts)),
                     "mean_tokens_per_chunk": round(float(np.mean(tokens)), 1), "bytes_on_disk": folder_mb(folder),
                     "datasets": sorted({a.source.split('/')[0] for a in arts})}
    res["stages_alone"] = {"load_s": round(t_load, 3), "chunk_s": round(t_chunk, 3)}
    print(f"[ingest] corpus: {len(paths)} files, {len(texts)} chunks; load {load()}", flush=True)

    # --- raw embedder, pipeline, raw embedder again --------------------------------------------------
    emb.embed(texts[:64])  # warm the session (first runs allocate)
    vectors, t_raw1 = _timed(emb.embed, texts)
    print(f"[ingest] raw embedder: {len(texts) / t_raw1:.1f} chunks/s", flush=True)
    spent = _instrument(pipe.store)
    report, t_pipe = _timed(pipe.ingest, [folder])
    assert report.ok, report.rejected
    if report.chunks != len(texts):
        raise SystemExit(f"pipeline made {report.chunks} chunks, the raw pass embedded {len(texts)}")
    res["peak_rss_mb_after_pipeline_ingest"] = peak_rss_mb()
    print(f"[ingest] pipeline: {report.chunks / t_pipe:.1f} chunks/s", flush=True)
    lc_store = None
    if not args.no_baseline:  # right after the pipeline, so both see about the same machine load
        from bench import baseline_langchain as lc

        lc_store, lc_res = lc.ingest(paths, folder, emb, work / "langchain-store")
        lc_res.update(store_mb=folder_mb(work / "langchain-store"), load=load(),
                      pipeline_speedup_same_corpus=round(lc_res["seconds"] / t_pipe, 3),
                      pipeline_speedup_chunks_per_s=round((report.chunks / t_pipe) / lc_res["chunks_per_s"], 3))
        res["langchain_ingest"] = lc_res
        print(f"[ingest] langchain: {lc_res['chunks']} chunks in {lc_res['seconds']:.1f} s", flush=True)
    _, t_raw2 = _timed(emb.embed, texts)
    raw = [len(texts) / t_raw1, len(texts) / t_raw2]
    pipe_cps = report.chunks / t_pipe
    res["throughput"] = {
        "raw_embedder_chunks_per_s": [round(x, 2) for x in raw],
        "pipeline_chunks_per_s": round(pipe_cps, 2),
        "pipeline_seconds": round(t_pipe, 2),
        "ratio_pipeline_to_raw": round(pipe_cps / float(np.mean(raw)), 3),
        "store_write_s_inside_pipeline": round(spent["store_write_s"], 2),
        "store_mb": folder_mb(work / "ingest-store"),
        "load": load(),
    }
    print(f"[ingest] raw again: {raw[1]:.1f} chunks/s; ratio {res['throughput']['ratio_pipeline_to_raw']}", flush=True)

    # --- the base set for large stores, and how close recombined vectors are to real ones ------------
    base = [corpus.BaseChunk(c.text, c.title, c.date, c.source) for c in flat]
    np.save(work / "base-vectors.npy", np.asarray(vectors, dtype=np.float32))
    (work / "base-chunks.json").write_text(json.dumps({
        "embedder": emb.name, "dim": emb.dim, "chunks": [b.__dict__ for b in base]}), encoding="utf-8")
    items = list(corpus.synthesize(base, vectors, 64, seed=99, count_tokens=emb.count_tokens))
    sample = [c for _, cs, _ in items for c in cs]
    mixed = np.concatenate([v for _, _, v in items])
    real = emb.embed([c.text for c in sample])
    cos = np.sum(real * mixed, axis=1)
    res["synthesis_check"] = {"n": len(sample), "cos_mixed_vs_real_mean": round(float(cos.mean()), 4),
                              "cos_min": round(float(cos.min()), 4)}

    # --- server mode ingest, then the same questions through every system, interleaved ----------------
    systems = {"embedded_search_hybrid": lambda q: pipe.search(q),
               "embedded_search_dense": lambda q: pipe.search(q, method="dense")}
    if args.server_port:
        srv = build_pipeline(settings.replace(chroma_host="127.0.0.1", chroma_port=args.server_port,
                                              collection="benchingest"), embedder=emb)
        report_s, t_srv = _timed(srv.ingest, [folder])
        assert report_s.ok and report_s.chunks == len(texts)
        res["server_ingest"] = {"chunks_per_s": round(report_s.chunks / t_srv, 2), "seconds": round(t_srv, 2),
                                "ratio_to_embedded_pipeline": round((report_s.chunks / t_srv) / pipe_cps, 3),
                                "load": load()}
        print(f"[ingest] server mode: {report_s.chunks / t_srv:.1f} chunks/s", flush=True)
        systems["server_search_hybrid"] = lambda q: srv.search(q)
    if lc_store is not None:
        systems["langchain_similarity_search"] = lambda q: lc.search(lc_store, q, settings.top_k)
    qs = corpus.questions(args.queries, skip=corpus.INGEST_QUESTIONS)
    res["query_same_corpus"] = _compare(systems, qs, emb, corpus.questions(5, skip=corpus.WARM_QUESTIONS))
    res["peak_rss_mb"] = peak_rss_mb()
    res["load_end"] = load()
    emit(res, args.out)


if __name__ == "__main__":
    main()
