"""Tune the fusion weights on the MultiHop-RAG *dev* split (never on test), then check test.

    .venv/bin/python -m bench.tune_retrieval --store /tmp/mh-store
    .venv/bin/python -m bench.tune_retrieval --store /tmp/mh200 --chunk-tokens 200 --chunk-overlap 40 \
        --out bench/results/tune_retrieval-200.json   # the earlier chunk size, for comparison

Indexes the 609-article corpus once (reused on reruns: ingest is idempotent), then
scores a grid of (dense_weight, rrf_k, candidates) on dev with the official hit rule
and the chunk-level evidence recall. Prints a table and writes bench/results/tune_retrieval.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.evaluation import metrics as m
from rag.evaluation.runner import multihop_part
from rag.ingest.loading import load_text
from rag.pipeline import build_pipeline
from rag.retrieve.retriever import Retriever


def evaluate(pipe, settings: Settings, cases, method: str = "hybrid") -> dict[str, float]:
    """Mean retrieval metrics over the answerable cases at k=10."""
    retriever = Retriever(pipe.store, pipe.embedder, settings)
    rows = []
    for c in cases:
        hits = retriever.search(c.question, top_k=10, method=method)
        chunks = [
            {"source": h.chunk.source, "start": h.chunk.start, "end": h.chunk.end, "text": h.chunk.text}
            for h in hits
        ]
        ev = m.evidence_scores(chunks, c.evidence, (4, 10))
        off = m.multihop_official_retrieval([x["text"] for x in chunks], [e["text"] for e in c.evidence])
        rows.append(
            {
                **{k: ev[k] for k in ("recall_at_10_chunk", "all_evidence_at_10_chunk")},
                "hits_at_10": off["hits_at_10"],
                "hits_at_4": off["hits_at_4"],
                "mrr_at_10": off["mrr_at_10"],
            }
        )
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", type=Path, default=Path("/tmp/mh-store"))
    ap.add_argument("--chunk-tokens", type=int, default=Settings().chunk_tokens)
    ap.add_argument("--chunk-overlap", type=int, default=Settings().chunk_overlap)
    ap.add_argument("--out", type=Path, default=Path("bench/results/tune_retrieval.json"))
    args = ap.parse_args()
    base = Settings(
        store=args.store, collection="mh", chunk_tokens=args.chunk_tokens, chunk_overlap=args.chunk_overlap
    )
    dev, test = multihop_part("dev", None), multihop_part("test", None)
    pipe = build_pipeline(base)
    t0 = time.time()
    pipe.ingest_documents(
        [load_text(r.text, source=r.source, title=r.title, date=r.date) for r in dev.corpus]
    )
    print(f"indexed {pipe.store.count_chunks()} chunks in {time.time() - t0:.0f} s")
    dev_cases = [c for c in dev.cases if c.answerable and c.evidence]
    test_cases = [c for c in test.cases if c.answerable and c.evidence]
    results = []
    for method in ("bm25", "dense"):
        results.append({"method": method, **evaluate(pipe, base, dev_cases, method)})
        print(results[-1])
    for wd, k, cand in itertools.product((0.2, 0.35, 0.5, 0.7, 1.0), (20, 60), (40, 80)):
        s = base.replace(dense_weight=wd, rrf_k=k, candidates=cand)
        results.append(
            {
                "method": "hybrid",
                "dense_weight": wd,
                "rrf_k": k,
                "candidates": cand,
                **evaluate(pipe, s, dev_cases),
            }
        )
        print(results[-1])
    best = max(
        (r for r in results if r["method"] == "hybrid"),
        key=lambda r: r["recall_at_10_chunk"] + r["hits_at_10"],
    )
    chosen = base.replace(
        dense_weight=best["dense_weight"], rrf_k=best["rrf_k"], candidates=best["candidates"]
    )
    test_scores = {
        "hybrid_best_on_dev": evaluate(pipe, chosen, test_cases),
        "hybrid_defaults": evaluate(pipe, base, test_cases),
        "bm25": evaluate(pipe, base, test_cases, "bm25"),
    }
    print("best on dev:", best)
    print("test:", json.dumps(test_scores, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    chunking = {"chunk_tokens": args.chunk_tokens, "chunk_overlap": args.chunk_overlap}
    args.out.write_text(
        json.dumps({"chunking": chunking, "dev": results, "best": best, "test": test_scores}, indent=1)
    )


if __name__ == "__main__":
    main()
