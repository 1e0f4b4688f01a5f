"""Calibrate (or just measure) the extractive answerer's weights and abstention thresholds.

Not part of the product. It ingests a public dataset into a cached store, runs
retrieval and ``ExtractiveAnswerer.rank`` once per question, keeps each candidate
sentence's score parts, and then replays selection and abstention for many
settings of the constants in ``rag/extractive.py`` without re-embedding anything.

    .venv/bin/python -m bench.calibrate_extractive --dataset squad --limit 1500
    .venv/bin/python -m bench.calibrate_extractive --dataset multihop

Tuning uses the dev split only (``split_of``: SQuAD question id, MultiHop-RAG query
text); the chosen constants are then reported on the test split, once.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag import extractive as ex
from rag.config import Settings
from rag.evaluation.datasets import multihop_rag, split_of, squad
from rag.evaluation.qa_metrics import abstention_scores, answer_contains_gold
from rag.loading import content_id
from rag.pipeline import build_pipeline
from rag.text import containment, shingles
from rag.types import Document

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PARTS = ("dense", "lexical", "type", "rank", "fragment")


@dataclass
class Row:
    """One question: gold, key-term coverage and its candidates' score parts."""

    split: str
    answerable: bool
    answers: list[str]
    coverage: float
    parts: np.ndarray  # (n_candidates, len(PARTS))
    gold: np.ndarray  # (n_candidates,) bool: the sentence holds a gold answer
    shingles: list[set]
    retrieved_gold: bool  # some retrieved passage holds a gold answer


def load(dataset: str, limit: int | None) -> tuple[list[Any], list[Any], Any]:
    """Corpus records, cases and a function giving a case's split."""
    if dataset == "squad":
        corpus, cases = squad(SHARED, version="2.0", limit=limit, seed=0)
        return corpus, cases, lambda c: split_of(c.id)
    corpus, cases = multihop_rag(SHARED, split="all")
    # Yes/no questions cannot be answered by quoting a sentence: keep entity answers and null queries.
    cases = [c for c in cases if not c.answerable or c.answers[0].lower() not in ("yes", "no")]
    if limit:
        cases = cases[:limit]
    return corpus, cases, lambda c: split_of(c.question)


def collect(dataset: str, limit: int | None, store: Path) -> list[Row]:
    """Ingest (cached), retrieve and rank every case once."""
    corpus, cases, split = load(dataset, limit)
    pipe = build_pipeline(Settings(store=store))
    docs = [Document(source=r.source, title=r.title, text=r.text, date=r.date, doc_id=content_id(r.text))
            for r in corpus]
    t0 = time.perf_counter()
    pipe.ingest_documents(docs)
    print(f"ingest: {time.perf_counter() - t0:.1f} s, {len(docs)} documents, {len(cases)} questions")
    answerer = pipe.answerer.extractive
    rows = []
    for case in cases:
        hits = pipe.search(case.question)
        ranking = answerer.rank(case.question, hits)
        cands = ranking.candidates
        parts = np.array([[c.parts[p] for p in PARTS] for c in cands], dtype=np.float32).reshape(-1, len(PARTS))
        gold = np.array([answer_contains_gold(c.text, case.answers) for c in cands], dtype=bool)
        rows.append(Row(split(case), case.answerable, case.answers, ranking.key_coverage, parts, gold,
                        [shingles(c.text) for c in cands],
                        any(answer_contains_gold(h.chunk.text, case.answers) for h in hits)))
    return rows


def replay(rows: list[Row], cfg: dict[str, float], limit: int = 3) -> dict[str, float]:
    """Selection and abstention with constants ``cfg``: accuracy and abstention scores."""
    w = np.array([cfg["W_DENSE"], cfg["W_LEXICAL"], cfg["W_TYPE"], cfg["W_RANK"], -cfg["FRAGMENT_PENALTY"]])
    abstained, answerable, correct, top1 = [], [], [], []
    for r in rows:
        scores = r.parts @ w if len(r.parts) else np.zeros(0)
        order = np.argsort(-scores, kind="stable")
        abstain = r.coverage < cfg["MIN_KEY_COVERAGE"] or not len(order) or scores[order[0]] < cfg["MIN_SCORE"]
        chosen: list[int] = []
        if not abstain:
            for i in order:
                if len(chosen) == limit or scores[i] < scores[order[0]] - cfg["KEEP_MARGIN"]:
                    break
                if any(containment(r.shingles[i], r.shingles[j]) >= ex.DUPLICATE_CONTAINMENT for j in chosen):
                    continue
                chosen.append(int(i))
        abstained.append(abstain)
        answerable.append(r.answerable)
        if r.answerable:
            correct.append(bool(chosen) and bool(r.gold[chosen].any()))
            top1.append(bool(chosen) and bool(r.gold[chosen[0]]))
    out = {k: round(v, 4) for k, v in abstention_scores(abstained, answerable).items()}
    n_ans = max(sum(answerable), 1)
    out["answer_contains_gold"] = round(sum(correct) / n_ans, 4)
    out["top1_sentence_has_gold"] = round(sum(top1) / n_ans, 4)
    right = sum(correct) + sum(a and not g for a, g in zip(abstained, answerable))
    out["overall"] = round(right / max(len(rows), 1), 4)  # answered right or abstained right
    return out


def current() -> dict[str, float]:
    """The constants as they are in rag/extractive.py."""
    names = ("W_DENSE", "W_LEXICAL", "W_TYPE", "W_RANK", "FRAGMENT_PENALTY", "MIN_SCORE", "MIN_KEY_COVERAGE",
             "KEEP_MARGIN")
    return {n: getattr(ex, n) for n in names}


def grid(rows: list[Row], objective: str) -> tuple[dict[str, float], dict[str, float]]:
    """Best constants on ``rows`` for ``objective`` (weights first, then thresholds)."""
    base = current()
    best_cfg, best = base, replay(rows, base)
    for wd, wl, wt, fp in itertools.product((0.3, 0.45, 0.6), (0.2, 0.35, 0.5), (0.0, 0.06, 0.12, 0.2),
                                            (0.0, 0.05, 0.1)):
        cfg = {**base, "W_DENSE": wd, "W_LEXICAL": wl, "W_TYPE": wt, "FRAGMENT_PENALTY": fp, "MIN_SCORE": -9,
               "MIN_KEY_COVERAGE": 0.0}
        res = replay(rows, cfg)
        if res["top1_sentence_has_gold"] > best.get("_top1", -1):
            best_cfg, best = cfg, {**res, "_top1": res["top1_sentence_has_gold"]}
    weights = best_cfg
    best = {}
    for ms, mk, km in itertools.product(np.arange(0.15, 0.56, 0.02), (0.0, 0.5, 0.6, 0.75, 1.0), (0.04, 0.08, 0.12)):
        cfg = {**weights, "MIN_SCORE": round(float(ms), 3), "MIN_KEY_COVERAGE": mk, "KEEP_MARGIN": km}
        res = replay(rows, cfg)
        if res[objective] > best.get(objective, -1):
            best_cfg, best = cfg, res
    return best_cfg, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("squad", "multihop"), default="squad")
    parser.add_argument("--limit", type=int, default=None, help="questions (SQuAD: a seeded sample)")
    parser.add_argument("--store", type=Path, default=None, help="store folder (cached between runs)")
    parser.add_argument("--tune", action="store_true", help="grid-search the constants on the dev split")
    parser.add_argument("--objective", default="overall")
    args = parser.parse_args()
    store = args.store or Path("/tmp") / f"dossier-calibrate-{args.dataset}"
    rows = collect(args.dataset, args.limit, store)
    dev = [r for r in rows if r.split == "dev"]
    test = [r for r in rows if r.split == "test"]
    recall = {s: round(sum(r.retrieved_gold for r in rs if r.answerable) / max(sum(r.answerable for r in rs), 1), 4)
              for s, rs in (("dev", dev), ("test", test))}
    report: dict[str, Any] = {"dataset": args.dataset, "questions": {"dev": len(dev), "test": len(test)},
                              "gold_in_retrieved_passages": recall, "current": current(),
                              "current_dev": replay(dev, current()), "current_test": replay(test, current())}
    if args.tune:
        cfg, res = grid(dev, args.objective)
        report.update(tuned=cfg, tuned_dev=res, tuned_test=replay(test, cfg))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
