"""The `score` stage: pure and offline, from a run file to a scored result.

Metric names are ``<part>/<metric>``, e.g. ``multihop-test/hits_at_10_doc``; the
BM25-only retriever and the Lead-k briefs are scored from the same run file as
baselines, and published anchors are printed beside our numbers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rag.evaluation import metrics as m
from rag.evaluation.stats import by_group, summarize

KS = (1, 3, 5, 10)
# Published (or shared-folder) anchors: (part prefix, our metric, anchor value, where it comes from).
ANCHORS = [
    ("multihop-test", "mh_hits_at_10", 0.7467, "MultiHop-RAG paper best Hits@10 (voyage-02 + bge-reranker)"),
    ("multihop-test", "mh_hits_at_4", 0.6625, "MultiHop-RAG paper best Hits@4"),
    ("multihop-test", "mh_mrr_at_10", 0.5860, "MultiHop-RAG paper best MRR@10"),
    ("multihop-test", "mh_hits_at_10", 0.8776, "local BM25 over 256-word chunks Hits@10 (SOURCE.md)"),
    ("multihop-test", "recall_at_10_chunk", 0.5725, "local BM25: share of gold facts in top 10 (SOURCE.md)"),
    ("multihop-test", "mh_accuracy", 0.56, "GPT-4 with retrieved chunks, answer accuracy (paper)"),
    ("multihop-test", "citation_recall", 0.73, "ALCE ChatGPT citation recall on ASQA (other dataset)"),
    ("multihop-test", "citation_precision", 0.72, "ALCE ChatGPT citation precision on ASQA (other dataset)"),
    ("cnndm", "rouge1", 0.4554, "Lead-3 vs expert refs, R-1 (SOURCE.md)"),
    ("cnndm", "rouge2", 0.2192, "Lead-3 vs expert refs, R-2 (SOURCE.md)"),
    ("cnndm", "rougeLsum", 0.3937, "Lead-3 vs expert refs, R-Lsum (SOURCE.md)"),
    ("cnndm", "rouge1", 0.4172, "GPT-3 zero-shot vs expert refs, R-1 (SOURCE.md)"),
    ("xsum", "rouge1", 0.3535, "Lead-1 vs expert refs, R-1 (SOURCE.md)"),
    ("xsum", "rouge2", 0.1478, "Lead-1 vs expert refs, R-2 (SOURCE.md)"),
    ("xsum", "rougeLsum", 0.2746, "Lead-1 vs expert refs, R-Lsum (SOURCE.md)"),
    ("xsum", "rouge1", 0.3917, "GPT-3 zero-shot vs expert refs, R-1 (SOURCE.md)"),
]


def read_run(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The meta line and the case records of a run file."""
    meta: dict[str, Any] = {}
    records = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("type") == "meta":
                meta = row
            elif row.get("type") in {"qa", "brief", "textbrief"}:
                records.append(row)
    return meta, records


# --- per question ----------------------------------------------------------------------


def _retrieval_values(rec: dict[str, Any], key: str) -> dict[str, float]:
    evidence = rec["case"]["evidence"]
    if not evidence:
        return {}
    values = m.evidence_scores(rec[key], evidence, KS)
    if rec["part"].startswith("multihop"):
        official = m.multihop_official_retrieval([c["text"] for c in rec[key]], [e["text"] for e in evidence])
        values.update({f"mh_{k}": v for k, v in official.items()})
    return values


def _cited_sentences(answer: dict[str, Any]) -> tuple[list[tuple[str, list[int]]], list[str]]:
    """ALCE input: each sentence with 0-based indices into the list of cited passages' texts."""
    by_chunk = {p["chunk_id"]: p["text"] for p in answer.get("passages", [])}
    passages: list[str] = []
    index: dict[int, int] = {}
    for c in answer.get("citations", []):
        index[c["key"]] = len(passages)
        passages.append(by_chunk.get(c["chunk_id"], c["quote"]))
    sentences = [
        (s["text"], [index[k] for k in s["citations"] if k in index]) for s in answer.get("sentences", [])
    ]
    return sentences, passages


def spans_exact(citations: list[dict[str, Any]], passages: list[dict[str, Any]]) -> float:
    """1.0 when every citation's quote is exactly the stored text at its span (read from the passage it cites)."""
    by_chunk = {p["chunk_id"]: p for p in passages}
    for c in citations:
        p = by_chunk.get(c["chunk_id"])
        if p is None or not (p["start"] <= c["start"] <= c["end"] <= p["end"]):
            return 0.0
        if p["text"][c["start"] - p["start"] : c["end"] - p["start"]] != c["quote"]:
            return 0.0
    return 1.0


def _answer_values(rec: dict[str, Any]) -> dict[str, float]:
    case, answer = rec["case"], rec["answer"]
    abstained = bool(answer.get("abstained"))
    pred = "" if abstained else answer.get("answer", "")
    out: dict[str, float] = {"abstained": float(abstained), "latency_ask": rec["latency"]["ask"]}
    if case["answerable"] and case["answers"]:
        out["exact_match"] = m.exact_match(pred, case["answers"])
        out["f1"] = m.f1(pred, case["answers"])
        out["contains_gold"] = float(m.answer_contains_gold(pred, case["answers"]))
        if rec["part"].startswith("multihop"):
            out["mh_accuracy"] = float(m.multihop_official_correct(pred, case["answers"][0]))
            out["mh_contains_gold"] = float(m.multihop_contains_gold(pred, case["answers"][0]))
    if answer.get("citations"):
        out["citation_spans_exact"] = spans_exact(answer["citations"], answer.get("passages", []))
    if not abstained and answer.get("sentences"):
        sentences, passages = _cited_sentences(answer)
        alce = m.alce_citation_scores(sentences, passages)
        out["citation_recall"], out["citation_precision"] = alce.recall, alce.precision
        pairs = [(text, [passages[i] for i in idx]) for text, idx in sentences]
        out["grounded_entities"] = m.grounded_entities_share(pairs)
        out["supported_sentences"] = float(np.mean([bool(s.get("supported")) for s in answer["sentences"]]))
    for k in ("prompt_tokens", "completion_tokens"):
        if answer.get("usage", {}).get(k) is not None:
            out[k] = float(answer["usage"][k])
    return out


def _qa_row(rec: dict[str, Any]) -> dict[str, Any]:
    case, answer = rec["case"], rec["answer"]
    values = {**_retrieval_values(rec, "retrieved"), **_answer_values(rec)}
    base = {f"bm25:{k}": v for k, v in _retrieval_values(rec, "retrieved_bm25").items()}
    verdict = _verdict(case, answer, values)
    return {
        "id": case["id"],
        "part": rec["part"],
        "question": case["question"],
        "type": case["tags"].get("type", "-"),
        "gold": " | ".join(case["answers"]) if case["answerable"] else "(unanswerable)",
        "answer": answer.get("answer", ""),
        "answerable": case["answerable"],
        "citations": [
            f"[{c['key']}] {c['source']} {c['start']}-{c['end']}" for c in answer.get("citations", [])
        ],
        "verdict": verdict,
        "values": {**values, **base},
    }


def _verdict(case: dict[str, Any], answer: dict[str, Any], values: dict[str, float]) -> str:
    if not case["answerable"]:
        return "correct abstention" if answer.get("abstained") else "answered an unanswerable question"
    if answer.get("abstained"):
        return "abstained on an answerable question"
    return "answer contains gold" if values.get("contains_gold") else "gold not in answer"


def _brief_row(rec: dict[str, Any]) -> dict[str, Any]:
    case, brief = rec["case"], rec["brief"]
    text = brief["text"]
    refs = list(case["references"].values())
    values: dict[str, float] = dict(m.rouge(text, refs)) if refs else {}
    facts = case["key_facts"] or [f for r in refs for f in m.key_facts(r)]
    values["key_fact_recall"] = m.key_fact_recall(text, facts) if facts else 0.0
    values["length_ok"] = float(m.length_compliance(text, brief["word_limit"])["ok"])
    sentences = brief.get("sentences", [])
    values["cited_sentences"] = (
        float(np.mean([bool(s["citations"]) for s in sentences])) if sentences else 0.0
    )
    values["supported_sentences"] = (
        float(np.mean([bool(s["supported"]) for s in sentences])) if sentences else 0.0
    )
    values["latency_brief"] = rec["latency"]["brief"]
    docs = rec.get("documents", {})
    values["citation_spans_exact"] = float(
        all(
            docs.get(c["source"], "")[c["start"] : c["end"]] == c["quote"] for c in brief.get("citations", [])
        )
    )
    return {
        "id": case["id"],
        "part": rec["part"],
        "question": "brief of " + ", ".join(case["sources"]),
        "type": "brief",
        "gold": refs[0] if refs else "",
        "answer": text,
        "citations": [],
        "verdict": "within limit" if values["length_ok"] else "over the word limit",
        "values": values,
    }


def _textbrief_row(rec: dict[str, Any]) -> dict[str, Any]:
    case = rec["case"]
    expert = case["references"]["expert"]
    ours, lead = rec["brief_text"], rec["lead"]
    values = {k: v for k, v in m.rouge(ours, expert).items()}
    facts = m.key_facts(expert)
    values["key_fact_recall"] = m.key_fact_recall(ours, facts) if facts else 0.0
    values["length_ok"] = float(m.length_compliance(ours, rec["budget"])["ok"])
    values["words"] = float(len(ours.split()))
    values["latency_brief"] = rec["latency"]["brief"]
    lead_n = rec["lead_n"]
    for k, v in m.rouge(lead, expert).items():
        values[f"lead{lead_n}:{k}"] = v
    values[f"lead{lead_n}:key_fact_recall"] = m.key_fact_recall(lead, facts) if facts else 0.0
    values[f"lead{lead_n}:words"] = float(len(lead.split()))
    for k, v in m.rouge(case["baselines"].get("gpt3", ""), expert).items():
        values[f"gpt3:{k}"] = v
    for k, v in m.rouge(ours, case["references"]["original"]).items():
        values[f"original_ref:{k}"] = v
    return {
        "id": case["id"],
        "part": rec["part"],
        "question": f"brief ({rec['budget']} words)",
        "type": rec["part"],
        "gold": expert,
        "answer": ours,
        "citations": [],
        "verdict": "",
        "values": values,
    }


# --- aggregate ----------------------------------------------------------------------------------


def _abstention(rows: list[dict[str, Any]], seed: int = 0) -> dict[str, dict[str, Any]]:
    """Abstention precision/recall with a bootstrap CI over questions."""
    flags = [(bool(r["values"]["abstained"]), bool(r["answerable"])) for r in rows]
    if not any(not g for _, g in flags):
        return {}
    point = m.abstention_scores([a for a, _ in flags], [g for _, g in flags])
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(500):
        pick = [flags[i] for i in rng.integers(0, len(flags), len(flags))]
        s = m.abstention_scores([a for a, _ in pick], [g for _, g in pick])
        for k in ("precision", "recall"):
            samples[k].append(s[k])
    return {
        f"abstention_{k}": {
            "value": point[k],
            "ci": list(np.percentile(samples[k], [2.5, 97.5])),
            "n": len(flags),
        }
        for k in ("precision", "recall")
    }


def _aggregate(rows: list[dict[str, Any]]) -> tuple[dict, dict]:
    """Ours and the baselines' (``name:metric``) metric summaries for one part."""
    names = sorted({k for r in rows for k in r["values"]})
    ours: dict[str, Any] = {}
    baselines: defaultdict[str, dict[str, Any]] = defaultdict(dict)
    for name in names:
        summary = summarize([r["values"][name] for r in rows if name in r["values"]])
        if ":" in name:
            base, metric = name.split(":", 1)
            baselines[base][metric] = summary
        else:
            ours[name] = summary
    return ours, dict(baselines)


def score(run_path: Path) -> dict[str, Any]:
    """Score a run file: metrics with 95% CIs, per-type slices, baselines, anchors, questions."""
    meta, records = read_run(run_path)
    builders = {"qa": _qa_row, "brief": _brief_row, "textbrief": _textbrief_row}
    rows = [builders[r["type"]](r) for r in records]
    scored: dict[str, Any] = {
        "run": {k: v for k, v in meta.items() if k != "type"},
        "metrics": {},
        "by_type": {},
        "by_k": {},
        "baselines": {},
        "anchors": {},
        "questions": rows,
        "latency": [r["values"].get("latency_ask", r["values"].get("latency_brief", 0.0)) for r in rows],
    }
    for part in dict.fromkeys(r["part"] for r in rows):
        part_rows = [r for r in rows if r["part"] == part]
        ours, baselines = _aggregate(part_rows)
        if part_rows[0]["values"].get("abstained") is not None:
            ours.update(_abstention(part_rows))
        scored["metrics"].update({f"{part}/{k}": v for k, v in ours.items()})
        for base, values in baselines.items():
            scored["baselines"].setdefault(base, {}).update({f"{part}/{k}": v for k, v in values.items()})
        _slices(scored, part, part_rows)
    scored["anchors"] = _anchors(scored["metrics"])
    return scored


def _slices(scored: dict[str, Any], part: str, rows: list[dict[str, Any]]) -> None:
    headline = [
        k
        for k in (
            "contains_gold",
            "f1",
            "mh_accuracy",
            "hits_at_10_doc",
            "recall_at_10_chunk",
            "citation_recall",
            "abstained",
            "rouge1",
            "rouge2",
        )
        if any(k in r["values"] for r in rows)
    ]
    types = {r["type"] for r in rows}
    if len(types) > 1:
        for t, metrics_ in by_group(rows, headline, "type").items():
            scored["by_type"][f"{part}:{t}"] = metrics_
    for series in ("recall", "hits", "ndcg", "all_evidence"):
        for level in ("chunk", "doc"):
            points = {
                str(k): scored["metrics"].get(f"{part}/{series}_at_{k}_{level}", {}).get("value") for k in KS
            }
            if all(v is not None for v in points.values()):
                scored["by_k"][f"{part} {series} ({level})"] = points


def _anchors(metrics_: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for part, metric, expected, source in ANCHORS:
        got = metrics_.get(f"{part}/{metric}")
        if got is not None:
            out[f"{part}/{metric} vs {source}"] = {
                "value": got["value"],
                "expected": expected,
                "source": source,
            }
    return out


def headline(scored: dict[str, Any], names: Iterable[str]) -> dict[str, float | None]:
    """Selected metric values (for the page and the README)."""
    return {n: scored["metrics"].get(n, {}).get("value") for n in names}
