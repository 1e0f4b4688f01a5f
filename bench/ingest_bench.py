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
        for name in names[i % len(names) :] + names[: i % len(names)]:
            _clear_query_cache(embedder)
            t0 = time.perf_counter()
            systems[name](q)
            times[name].append(time.perf_counter() - t0)
    return {name: {**stats(ts), "load": load()} for name, ts in times.items()}


def _split(arts: list, parts: int) -> list[list]:
    """Consecutive runs of articles, about the same number of characters each."""
    total = sum(len(a.text) for a in arts)
    out: list[list] = [[]]
    acc = 0
    for a in arts:
        if acc >= total * len(out) / parts and len(out) < parts:
            out.append([])
        out[-1].append(a)
        acc += len(a.text)
    return [p for p in out if p]


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
    ap.add_argument(
        "--parts", type=int, default=4, help="the corpus is ingested in this many parts, systems in turn"
    )
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from rag.config import Settings
    from rag.ingest.loading import load_paths
    from rag.pipeline import build_pipeline

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"load_start": load(), "target_chunks": args.chunks}
    settings = Settings(store=work / "ingest-store")
    pipe, t_build = _timed(build_pipeline, settings)
    emb = pipe.embedder
    res["embedder"] = {
        "name": emb.name,
        "dim": emb.dim,
        "batch_size": getattr(emb, "batch_size", None),
        "build_pipeline_s": round(t_build, 3),
    }

    # --- the corpus: report files in parts, and the chunk texts the pipeline will embed -------------
    arts, _, _ = corpus.real_corpus(args.chunks, pipe.chunker)
    folder = work / "corpus"
    parts = _split(arts, args.parts)
    part_paths = [corpus.write_files(part, folder / f"part-{i}") for i, part in enumerate(parts)]
    t_load, t_chunk, part_texts, flat = 0.0, 0.0, [], []
    for i, part in enumerate(parts):
        loaded, t = _timed(load_paths, [folder / f"part-{i}"], max_bytes=50 * 2**20)
        t_load += t
        by_source = {d.source: d for d in loaded.documents}
        per_doc, t = _timed(lambda: [pipe.chunker.split(by_source[a.source]) for a in part])  # noqa: B023 - called at once; as ingest will
        t_chunk += t
        part_texts.append([c.text for cs in per_doc for c in cs])
        flat += [c for cs in per_doc for c in cs]
    texts = [t for pt in part_texts for t in pt]
    tokens = [emb.count_tokens(t) for t in texts]
    res["corpus"] = {
        "files": len(arts),
        "chunks": len(texts),
        "chars": sum(map(len, texts)),
        "mean_tokens_per_chunk": round(float(np.mean(tokens)), 1),
        "bytes_on_disk": folder_mb(folder),
        "datasets": sorted({a.source.split("/")[0] for a in arts}),
        "parts": len(parts),
    }
    res["stages_alone"] = {"load_s": round(t_load, 3), "chunk_s": round(t_chunk, 3)}
    print(
        f"[ingest] corpus: {len(arts)} files, {len(texts)} chunks in {len(parts)} parts; load {load()}",
        flush=True,
    )

    # --- every system ingests each part in turn, in rotating order --------------------------------------
    # The raw embedder and the pipelines see the same load this way: a single long run of each, one after
    # the other, measured the machine's load changes as much as the pipeline (raw 21.7 then 16.7 chunks/s).
    emb.embed(texts[:64])  # warm the session (first runs allocate)
    spent = _instrument(pipe.store)
    srv = lc_store = None
    if args.server_port:
        srv = build_pipeline(
            settings.replace(chroma_host="127.0.0.1", chroma_port=args.server_port, collection="benchingest"),
            embedder=emb,
        )
    if not args.no_baseline:
        from bench import baseline_langchain as lc

        lc_store = lc.open_store(emb, work / "langchain-store")
    names = (
        ["raw", "pipeline"] + (["server"] if srv else []) + (["langchain"] if lc_store is not None else [])
    )
    seconds = {n: 0.0 for n in names}
    made = {n: 0 for n in names}
    raw_vectors = []
    for i in range(len(parts)):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            if name == "raw":
                vecs, t = _timed(emb.embed, part_texts[i])
                raw_vectors.append(vecs)
                n = len(part_texts[i])
            elif name == "langchain":
                got = lc.add_files(lc_store, part_paths[i], folder / f"part-{i}")
                t, n = got["seconds"], got["chunks"]
                made.setdefault("lc_tokens", 0)
                made["lc_tokens"] += got["tokens"]
                made.setdefault("lc_over_254", 0)
                made["lc_over_254"] += got["over_254_tokens"]
            else:
                report, t = _timed((pipe if name == "pipeline" else srv).ingest, [folder / f"part-{i}"])
                assert report.ok and report.chunks == len(part_texts[i]), (
                    name,
                    report.rejected,
                    report.chunks,
                )
                n = report.chunks
            seconds[name] += t
            made[name] += n
        print(
            f"[ingest] part {i + 1}/{len(parts)}: "
            + ", ".join(f"{k} {made[k] / seconds[k]:.1f}" for k in names)
            + f" chunks/s; load {load()}",
            flush=True,
        )
    vectors = np.concatenate(raw_vectors)
    cps = {n: made[n] / seconds[n] for n in names}
    res["peak_rss_mb_after_ingests"] = peak_rss_mb()
    res["throughput"] = {
        "raw_embedder_chunks_per_s": round(cps["raw"], 2),
        "pipeline_chunks_per_s": round(cps["pipeline"], 2),
        "pipeline_seconds": round(seconds["pipeline"], 2),
        "ratio_pipeline_to_raw": round(cps["pipeline"] / cps["raw"], 3),
        "store_write_s_inside_pipeline": round(spent["store_write_s"], 2),
        "store_mb": folder_mb(work / "ingest-store"),
        "load": load(),
    }
    if srv:
        res["server_ingest"] = {
            "chunks_per_s": round(cps["server"], 2),
            "seconds": round(seconds["server"], 2),
            "ratio_to_raw": round(cps["server"] / cps["raw"], 3),
            "ratio_to_embedded_pipeline": round(cps["server"] / cps["pipeline"], 3),
        }
    if lc_store is not None:
        res["langchain_ingest"] = {
            "splitter": lc.SPLITTER,
            "chunks": made["langchain"],
            "seconds": round(seconds["langchain"], 2),
            "chunks_per_s": round(cps["langchain"], 2),
            "tokens": made["lc_tokens"],
            "over_254_tokens": made["lc_over_254"],
            "store_mb": folder_mb(work / "langchain-store"),
            "dossier_tokens": int(sum(tokens)),
            "pipeline_speedup_same_corpus": round(seconds["langchain"] / seconds["pipeline"], 3),
            "pipeline_speedup_chunks_per_s": round(cps["pipeline"] / cps["langchain"], 3),
        }
    print(f"[ingest] ratio pipeline/raw {res['throughput']['ratio_pipeline_to_raw']}", flush=True)

    # --- the base set for large stores, and how close recombined vectors are to real ones ------------
    base = [corpus.BaseChunk(c.text, c.title, c.date, c.source) for c in flat]
    np.save(work / "base-vectors.npy", np.asarray(vectors, dtype=np.float32))
    (work / "base-chunks.json").write_text(
        json.dumps({"embedder": emb.name, "dim": emb.dim, "chunks": [b.__dict__ for b in base]}),
        encoding="utf-8",
    )
    items = list(corpus.synthesize(base, vectors, 64, seed=99, count_tokens=emb.count_tokens))
    sample = [c for _, cs, _ in items for c in cs]
    mixed = np.concatenate([v for _, _, v in items])
    real = emb.embed([c.text for c in sample])
    cos = np.sum(real * mixed, axis=1)
    res["synthesis_check"] = {
        "n": len(sample),
        "cos_mixed_vs_real_mean": round(float(cos.mean()), 4),
        "cos_min": round(float(cos.min()), 4),
    }

    # --- the same questions through every system, interleaved ------------------------------------------
    systems = {
        "embedded_search_hybrid": lambda q: pipe.search(q),
        "embedded_search_dense": lambda q: pipe.search(q, method="dense"),
    }
    if srv:
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
