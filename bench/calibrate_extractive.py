"""Calibrate (or just measure) the extractive answerer's weights and abstention thresholds.

Not part of the product. It ingests a public dataset into a store, retrieves the
top passages for every question and embeds their candidate sentences once (both
cached under the store folder), then replays scoring, selection and abstention
with ``rag.answer.extractive.features`` for any ``Weights`` without embedding again.

    .venv/bin/python -m bench.calibrate_extractive --dataset squad --limit 1500 --tune
    .venv/bin/python -m bench.calibrate_extractive --dataset multihop --tune

Tuning looks at the dev split only (``split_of``: SQuAD question id, MultiHop-RAG
query text); the chosen weights are then reported once on the test split.
The measured numbers are quoted in the module docstring of ``rag/answer/extractive.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer import extractive as ex
from rag.answer.question import analyse_question
from rag.config import Settings
from rag.evaluation.datasets import multihop_rag, split_of, squad
from rag.evaluation.qa_metrics import abstention_scores, answer_contains_gold
from rag.ingest.loading import content_id
from rag.nlp.text import shingles, split_sentences
from rag.pipeline import build_pipeline
from rag.types import Chunk, Document, Hit

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@dataclass
class Row:
    """One question with its retrieved passages and candidate sentences (text, similarity, passage rank)."""

    question: str
    answers: list[str]
    answerable: bool
    split: str
    hits: list[tuple[str, str, str, str | None]]  # chunk text, title, source, date
    cands: list[tuple[int, str, float]]


def load(dataset: str, limit: int | None) -> tuple[list[Any], list[Any], Any]:
    """Corpus records, cases and a function giving a case's split."""
    if dataset == "squad":
        corpus, cases = squad(SHARED, version="2.0", limit=limit, seed=0)
        return corpus, cases, lambda c: split_of(c.id)
    corpus, cases = multihop_rag(SHARED, split="all")
    # Yes/no questions cannot be answered by quoting a sentence: keep entity answers and null queries.
    cases = [c for c in cases if not c.answerable or c.answers[0].lower() not in ("yes", "no")]
    return corpus, cases[:limit] if limit else cases, lambda c: split_of(c.question)


def collect(dataset: str, limit: int | None, store: Path) -> list[Row]:
    """Ingest, retrieve and embed candidates once; cached in ``store``/rows-*.pkl."""
    cache = store / f"rows-{dataset}-{limit or 'all'}.pkl"
    if cache.exists():
        return [Row(**d) for d in pickle.loads(cache.read_bytes())]
    corpus, cases, split = load(dataset, limit)
    pipe = build_pipeline(Settings(store=store))
    t0 = time.perf_counter()
    pipe.ingest_documents(
        [
            Document(source=r.source, title=r.title, text=r.text, date=r.date, doc_id=content_id(r.text))
            for r in corpus
        ]
    )
    print(f"ingest: {time.perf_counter() - t0:.0f} s for {len(corpus)} documents", flush=True)
    rows = []
    for case in cases:
        hits = pipe.search(case.question)
        qvec = pipe.embedder.embed_query(case.question)
        cands, seen = [], set()
        for rank, h in enumerate(hits):
            for s in split_sentences(h.chunk.text, offset=h.chunk.start):
                if ex.usable(s) and (h.chunk.doc_id, s.start, s.end) not in seen:
                    seen.add((h.chunk.doc_id, s.start, s.end))
                    cands.append((rank, s.text))
        sims = pipe.embedder.embed([t for _, t in cands]) @ qvec if cands else []
        rows.append(
            Row(
                case.question,
                case.answers,
                case.answerable,
                split(case),
                [(h.chunk.text, h.chunk.title, h.chunk.source, h.chunk.date) for h in hits],
                [(r, t, float(s)) for (r, t), s in zip(cands, sims)],
            )
        )
    cache.write_bytes(pickle.dumps([asdict(r) for r in rows]))
    return rows


@dataclass
class Prepared:
    """A row's features, gold flags and shingles, computed once for all weight settings."""

    row: Row
    feats: np.ndarray
    gold: np.ndarray
    coverage: float
    shingles: list[set]


def prepare(rows: list[Row]) -> list[Prepared]:
    """Features (with the product's own ``features``), gold flags and key-term coverage of every row."""
    out = []
    for r in rows:
        q = analyse_question(r.question)
        infos = [ex.sentence_info(t) for _, t, _ in r.cands]
        feats = ex.features(
            q, infos, np.array([s for _, _, s in r.cands]), [k for k, _, _ in r.cands], len(r.hits)
        )
        hits = [
            Hit(Chunk("", "", src, 0, 0, len(text), text, title=title, date=date), 0.0)
            for text, title, src, date in r.hits
        ]
        coverage, _ = ex.key_coverage(q, hits)
        gold = np.array([answer_contains_gold(t, r.answers) for _, t, _ in r.cands], dtype=bool)
        out.append(Prepared(r, feats, gold, coverage, [shingles(t) for _, t, _ in r.cands]))
    return out


def embed_cut(rows: list[Prepared], limit: int, w: ex.Weights) -> list[Prepared]:
    """As the product does (``rag.answer.extractive.shortlist``): keep only the candidates it would embed."""
    out = []
    for p in rows:
        keep = ex.shortlist(p.feats, w, limit)
        out.append(Prepared(p.row, p.feats[keep], p.gold[keep], p.coverage, [p.shingles[i] for i in keep]))
    return out


def replay(rows: list[Prepared], w: ex.Weights, limit: int = 3) -> dict[str, float]:
    """Selection and abstention with weights ``w``: accuracy and abstention scores."""
    vec = w.vector()
    abstained, answerable, correct, top1, lengths = [], [], [], [], []
    for p in rows:
        scores = p.feats @ vec if len(p.feats) else np.zeros(0)
        order = np.argsort(-scores, kind="stable")
        abstain = ex.abstain_reason(w, p.coverage, [], p.feats, scores) is not None
        chosen = (
            []
            if abstain
            else [
                int(order[i])
                for i in ex.choose(
                    list(scores[order]),
                    list(p.feats[order, 3]),
                    [p.shingles[i] for i in order],
                    w,
                    limit,
                    typed=bool(p.feats[:, 4].any() or p.feats[:, 3].any()),
                )
            ]
        )
        abstained.append(bool(abstain))
        answerable.append(p.row.answerable)
        lengths += [len(chosen)] if chosen else []
        if p.row.answerable:
            correct.append(bool(chosen) and bool(p.gold[chosen].any()))
            top1.append(len(order) > 0 and bool(p.gold[order[0]]))  # forced to answer
    out = {k: round(v, 4) for k, v in abstention_scores(abstained, answerable).items()}
    n = max(sum(answerable), 1)
    out.update(
        answered_with_gold=round(sum(correct) / n, 4),
        best_sentence_has_gold=round(sum(top1) / n, 4),
        mean_sentences=round(float(np.mean(lengths)) if lengths else 0.0, 2),
    )
    right = sum(correct) + sum(a and not g for a, g in zip(abstained, answerable))
    out["overall"] = round(right / max(len(rows), 1), 4)  # answered with gold, or abstained when unanswerable
    return out


def tune(rows: list[Prepared], max_over_abstention: float) -> ex.Weights:
    """Weights by best-sentence accuracy, then thresholds by overall accuracy under an over-abstention cap."""
    best, score = ex.Weights(), -1.0
    for d, lx, r, t, nt, rk, fr in itertools.product(
        (0.3, 0.45, 0.6),
        (0.0, 0.2, 0.35),
        (0.0, 0.2, 0.35),
        (0.0, 0.1, 0.2),
        (0.0, 0.1),
        (0.0, 0.08),
        (0.0, 0.05),
    ):
        w = replace(best, dense=d, lexical=lx, rare=r, answer_type=t, no_type=nt, rank=rk, fragment=fr)
        s = replay(rows, w)["best_sentence_has_gold"]
        if s > score + 1e-9:
            best, score = w, s
    weights, score = best, -1.0
    for md, ms, mk, km in itertools.product(
        (0.4, 0.45, 0.5, 0.55), (0.4, 0.45, 0.5, 0.55, 0.6), (0.0, 0.01, 0.5, 0.75), (0.04, 0.08, 0.12)
    ):
        w = replace(weights, min_dense=md, min_score=ms, min_key_coverage=mk, keep_margin=km)
        res = replay(rows, w)
        if res["over_abstention_rate"] <= max_over_abstention and res["overall"] > score:
            best, score = w, res["overall"]
    return best


def main() -> None:
    """Measure the current weights on dev and test; with --tune, also tune on dev and report on test."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dataset", choices=("squad", "multihop"), default="squad")
    parser.add_argument("--limit", type=int, default=None, help="questions (SQuAD: a seeded sample)")
    parser.add_argument("--store", type=Path, default=None, help="store folder (reused between runs)")
    parser.add_argument("--tune", action="store_true", help="grid-search the weights on the dev split")
    parser.add_argument(
        "--max-over-abstention",
        type=float,
        default=0.10,
        help="tuning cap on the share of answerable dev questions declined",
    )
    parser.add_argument(
        "--embed",
        type=int,
        default=Settings().answer_embed_sentences,
        help="candidates embedded per question (settings.answer_embed_sentences; 0 = all)",
    )
    args = parser.parse_args()
    store = args.store or Path("/tmp") / f"dossier-calibrate-{args.dataset}"
    rows = prepare(collect(args.dataset, args.limit, store))
    if args.embed:
        rows = embed_cut(rows, args.embed, ex.Weights())
    dev = [p for p in rows if p.row.split == "dev"]
    test = [p for p in rows if p.row.split == "test"]
    report: dict[str, Any] = {
        "dataset": args.dataset,
        "questions": {
            s: {
                "answerable": sum(p.row.answerable for p in ps),
                "unanswerable": sum(not p.row.answerable for p in ps),
            }
            for s, ps in (("dev", dev), ("test", test))
        },
        "gold_in_retrieved_passages": {
            s: round(float(np.mean([p.gold.any() for p in ps if p.row.answerable] or [0])), 4)
            for s, ps in (("dev", dev), ("test", test))
        },
        "embedded_candidates": args.embed or "all",
        "weights": asdict(ex.Weights()),
        "dev": replay(dev, ex.Weights()),
        "test": replay(test, ex.Weights()),
    }
    if args.tune:
        tuned = tune(dev, args.max_over_abstention)
        report.update(tuned=asdict(tuned), tuned_dev=replay(dev, tuned), tuned_test=replay(test, tuned))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
