"""Answer metrics exactly as the field computes them: SQuAD EM/F1, containment,
MultiHop-RAG accuracy, abstention, and cost summaries.

Values are fractions in [0, 1] except ``squad_scores``, which mirrors the
official SQuAD scripts and reports percentages.
"""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


# --- SQuAD -------------------------------------------------------------------------


def normalize_answer(s: str) -> str:
    """Official SQuAD v1.1 normalisation: lower, drop ASCII punctuation, articles, extra spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def _f1_v1(prediction: str, gold: str) -> float:
    """v1.1 ``f1_score``: 0 when nothing overlaps (also when both sides are empty)."""
    pred, ref = _tokens(prediction), _tokens(gold)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    p, r = same / len(pred), same / len(ref)
    return 2 * p * r / (p + r)


def _f1_v2(prediction: str, gold: str) -> float:
    """v2.0 ``compute_f1``: if either side is empty, 1 when both are empty, else 0."""
    pred, ref = _tokens(prediction), _tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    return _f1_v1(prediction, gold)


def _em(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _v2_golds(golds: Iterable[str]) -> list[str]:
    """v2.0 rule: golds that normalise to nothing are dropped; none left means unanswerable ("")."""
    kept = [g for g in golds if normalize_answer(g)]
    return kept or [""]


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """Max over gold answers of normalised equality (SQuAD v2 rule: no golds -> prediction must be empty)."""
    return max(_em(prediction, g) for g in _v2_golds(golds))


def f1(prediction: str, golds: Sequence[str]) -> float:
    """Max over gold answers of SQuAD token F1 (v2 rule for empty sides: 1 iff both empty)."""
    return max(_f1_v2(prediction, g) for g in _v2_golds(golds))


def _squad_questions(dataset_json: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for article in dataset_json["data"]:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def squad_scores(dataset_json: Mapping[str, Any], predictions: Mapping[str, str]) -> dict[str, float]:
    """Corpus EM/F1 (percent) as the official evaluate script of the dataset's version computes them.

    v1.1: a question missing from ``predictions`` scores 0 and counts in the total.
    v2.0: a missing question is skipped (not in the total), golds that normalise to
    empty are dropped, an unanswerable question is right iff the prediction is empty;
    ``has_ans_*`` / ``no_ans_*`` break the score down as the v2.0 script does.
    """
    if str(dataset_json.get("version", "1.1")).lstrip("v").startswith("2"):
        return _squad_v2(dataset_json, predictions)
    em = f = 0.0
    total = 0
    missing: list[str] = []
    for qa in _squad_questions(dataset_json):
        total += 1
        if qa["id"] not in predictions:
            missing.append(qa["id"])
            continue
        golds = [a["text"] for a in qa["answers"]]
        pred = predictions[qa["id"]]
        em += max(_em(pred, g) for g in golds)
        f += max(_f1_v1(pred, g) for g in golds)
    if missing:
        log.warning("%d unanswered questions receive score 0 (first: %s)", len(missing), missing[0])
    return {
        "exact_match": 100.0 * em / total,
        "f1": 100.0 * f / total,
        "total": total,
        "missing": len(missing),
    }


def _squad_v2(dataset_json: Mapping[str, Any], predictions: Mapping[str, str]) -> dict[str, float]:
    exact: dict[str, float] = {}
    f1s: dict[str, float] = {}
    has_ans: dict[str, bool] = {}
    missing = 0
    for qa in _squad_questions(dataset_json):
        has_ans[qa["id"]] = bool(qa["answers"])
        if qa["id"] not in predictions:
            missing += 1
            continue
        golds = _v2_golds(a["text"] for a in qa["answers"])
        pred = predictions[qa["id"]]
        exact[qa["id"]] = max(_em(pred, g) for g in golds)
        f1s[qa["id"]] = max(_f1_v2(pred, g) for g in golds)
    if missing:
        log.warning("Missing prediction for %d questions (skipped, as the v2.0 script does)", missing)
    out: dict[str, float] = {"missing": missing}
    for prefix, ids in (
        ("", list(exact)),
        ("has_ans_", [q for q in exact if has_ans[q]]),
        ("no_ans_", [q for q in exact if not has_ans[q]]),
    ):
        n = len(ids)
        out[prefix + "exact_match"] = 100.0 * sum(exact[q] for q in ids) / n if n else 0.0
        out[prefix + "f1"] = 100.0 * sum(f1s[q] for q in ids) / n if n else 0.0
        out[prefix + "total"] = n
    return out


# --- containment and MultiHop-RAG ---------------------------------------------------


def answer_contains_gold(prediction: str, golds: Sequence[str], *, word_boundary: bool = True) -> bool:
    """ "Match" (BERGEN) / "acc" (FlashRAG): some normalised gold occurs in the normalised prediction.

    With ``word_boundary`` (default) the gold must occur as whole tokens, so gold
    "no" is not found in "not known"; ``word_boundary=False`` is the raw substring
    test the two frameworks use. Empty golds never match.
    """
    pred = normalize_answer(prediction)
    padded = f" {pred} "
    for gold in golds:
        g = normalize_answer(gold)
        if g and ((f" {g} " in padded) if word_boundary else (g in pred)):
            return True
    return False


_MH_ANSWER = re.compile(r'The answer to the question is "(.*?)"')


def multihop_extract_answer(text: str) -> str:
    """MultiHop-RAG ``qa_evaluate.extract_answer``: the quoted answer when the model used the template."""
    m = _MH_ANSWER.search(text)
    return m.group(1) if m else text


def multihop_official_correct(prediction: str, gold: str) -> bool:
    """MultiHop-RAG official accuracy: lowercased whitespace tokens of prediction and gold intersect.

    Verbatim logic of ``qa_evaluate.py``: ``set(pred.lower().split()) & set(gold.lower().split())``
    after ``extract_answer``; punctuation stays attached ("information." != "information").
    """
    pred = multihop_extract_answer(prediction).lower()
    return bool(set(pred.split()).intersection(gold.lower().split()))


def multihop_contains_gold(prediction: str, gold: str) -> bool:
    """Our stricter MultiHop-RAG accuracy: the whole normalised gold occurs as tokens in the prediction."""
    return answer_contains_gold(multihop_extract_answer(prediction), [gold])


def abstention_scores(abstained: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float]:
    """Precision/recall/F1 of abstaining, the positive class being "should abstain" (not answerable).

    ``false_answer_rate`` is the share of unanswerable questions that got an answer;
    ``over_abstention_rate`` the share of answerable questions the system declined.
    A ratio with an empty denominator is 0.0 (and the matching count is 0).
    """
    if len(abstained) != len(answerable):
        raise ValueError(f"{len(abstained)} abstention flags for {len(answerable)} gold flags")
    tp = sum(a and not g for a, g in zip(abstained, answerable, strict=True))
    pred_pos = sum(bool(a) for a in abstained)
    gold_pos = sum(not g for g in answerable)
    precision = tp / pred_pos if pred_pos else 0.0
    recall = tp / gold_pos if gold_pos else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    answerable_n = len(answerable) - gold_pos
    over = sum(a and g for a, g in zip(abstained, answerable, strict=True))
    return {
        "precision": precision,
        "recall": recall,
        "f1": f,
        "predicted_abstentions": pred_pos,
        "unanswerable": gold_pos,
        "false_answer_rate": (gold_pos - tp) / gold_pos if gold_pos else 0.0,
        "over_abstention_rate": over / answerable_n if answerable_n else 0.0,
    }


# --- cost ---------------------------------------------------------------------------


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50 / p95 / mean / max of latencies (numpy linear-interpolation percentiles); None when empty."""
    if not seconds:
        return {"n": 0, "p50": None, "p95": None, "mean": None, "max": None}
    arr = np.asarray(seconds, dtype=float)
    return {
        "n": int(arr.size),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
    }


def token_totals(usages: Iterable[Mapping[str, int | None]]) -> dict[str, int]:
    """Sum token counts per key (e.g. prompt_tokens, completion_tokens) over many answers."""
    totals: Counter[str] = Counter()
    for usage in usages:
        for key, value in usage.items():
            totals[key] += int(value or 0)
    return dict(totals)
