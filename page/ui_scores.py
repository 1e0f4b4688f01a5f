"""Pure helpers for the Evaluate tab (``page.eval_tab``): metric rows, tables and chart columns.

No Streamlit here, so everything is testable without a page. The input is a
scored run as the evaluation harness returns it (``run_fast`` or ``latest_report``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Metrics shown as headline tiles, in this order (per part of the suite, e.g. "gold/f1"); the rest are in a table.
HEADLINE = [
    "contains_gold",
    "f1",
    "hits_at_5_doc",
    "recall_at_10_chunk",
    "mrr_at_10_chunk",
    "mh_hits_at_10",
    "mh_accuracy",
    "citation_precision",
    "citation_recall",
    "supported_sentences",
    "abstention_precision",
    "abstention_recall",
    "rouge1",
    "rouge2",
    "rougeLsum",
    "key_fact_recall",
    "length_ok",
    "latency_ask",
    "latency_brief",
]


def fmt_num(value: Any, digits: int = 3) -> str:
    """A metric value for display ('n/a' when missing)."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _split(name: str) -> tuple[str, str]:
    """'gold/f1' -> ('gold', 'f1'); 'f1' -> ('', 'f1')."""
    part, _, metric = name.rpartition("/")
    return part, metric


def eval_parts(scored: dict) -> list[str]:
    """The parts of a run (datasets of the suite), in run order; '' for un-namespaced metrics."""
    return list(dict.fromkeys(_split(n)[0] for n in scored.get("metrics") or {}))


def metric_rows(scored: dict, part: str, *, headline: bool) -> list[dict[str, Any]]:
    """Metrics of one part: value, CI, n, every baseline's value, the delta to the first, and anchors."""
    metrics = {n: m for n, m in (scored.get("metrics") or {}).items() if _split(n)[0] == part}
    names = list(metrics)
    if headline:
        chosen = [n for key in HEADLINE for n in names if _split(n)[1] == key]
        names = chosen or names[:8]
    rows = []
    for name in names:
        m = metrics[name]
        bases = [
            (b, ms[name].get("value")) for b, ms in (scored.get("baselines") or {}).items() if name in ms
        ]
        anchors = [
            a
            for key, a in (scored.get("anchors") or {}).items()
            if key == name or key.startswith(name + " vs ")
        ]
        value, ci = m.get("value"), m.get("ci")
        first = bases[0] if bases else (None, None)
        numeric = isinstance(value, (int, float)) and isinstance(first[1], (int, float))
        notes = [
            f"95% CI {fmt_num(ci[0])}\u2013{fmt_num(ci[1])}" if ci else "no CI",
            f"n = {m.get('n', '?')}",
        ]
        notes += [f"baseline {b}: {fmt_num(v)}" for b, v in bases]
        notes += [f"anchor {fmt_num(a.get('expected'))} ({a.get('source', '')})" for a in anchors]
        rows.append(
            {
                "name": _split(name)[1],
                "metric": name,
                "value": value,
                "ci": ci,
                "n": m.get("n"),
                "baseline": first[0],
                "delta": value - first[1] if numeric else None,
                "baselines": dict(bases),
                "anchors": anchors,
                "help": "; ".join(notes),
            }
        )
    return rows


def metric_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``metric_rows`` as plain table rows (one column per baseline)."""
    out = []
    for r in rows:
        ci = r["ci"] or [None, None]
        row = {"metric": r["name"], "value": r["value"], "CI low": ci[0], "CI high": ci[1], "n": r["n"]}
        row.update({f"baseline {b}": v for b, v in r["baselines"].items()})
        out.append(row)
    return out


def anchor_rows(scored: dict, part: str | None = None) -> list[dict[str, Any]]:
    """Anchors: our number next to the published (or locally measured) number it should reproduce."""
    return [
        {
            "anchor": name,
            "ours": a.get("value"),
            "expected": a.get("expected"),
            "difference": (a["value"] - a["expected"])
            if isinstance(a.get("value"), (int, float)) and isinstance(a.get("expected"), (int, float))
            else None,
        }
        for name, a in (scored.get("anchors") or {}).items()
        if part is None or _split(name.split(" vs ")[0])[0] == part
    ]


def by_k_columns(by_k: dict, part: str = "") -> dict[str, list]:
    """``{"k": [...], series: [...]}`` for a line chart with k on the x axis (series of one part)."""
    series = {n: s for n, s in by_k.items() if not part or n == part or n.startswith(part + " ")}
    ks = sorted({int(k) for s in series.values() for k in s})
    cols: dict[str, list] = {"k": ks}
    for name, s in series.items():
        cols[name[len(part) :].strip() or name] = [s.get(str(k), s.get(k)) for k in ks]
    return cols if len(cols) > 1 else {}


def by_type_columns(by_type: dict, part: str = "", metrics: Iterable[str] | None = None) -> dict[str, list]:
    """``{"type": [...], metric: [...]}`` for a grouped bar chart by question type (types of one part)."""
    types = {t.split(":", 1)[-1]: v for t, v in by_type.items() if not part or t.startswith(part + ":")}
    names = list(dict.fromkeys(m for v in types.values() for m in v if metrics is None or m in metrics))
    if not types or not names:
        return {}
    cols: dict[str, list] = {"type": list(types)}
    for name in names:
        cols[name] = [(v.get(name) or {}).get("value") for v in types.values()]
    return cols


def latency_columns(latency: list[float], bins: int = 10) -> dict[str, list]:
    """A histogram of per-question latencies: ``{"seconds": labels, "questions": counts}``."""
    values = sorted(float(v) for v in latency if v is not None)
    if not values:
        return {"seconds": [], "questions": []}
    lo, hi = values[0], values[-1]
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return {"seconds": [f"{lo + i * width:.2f}" for i in range(bins)], "questions": counts}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    vals = sorted(float(v) for v in values if v is not None)
    if not vals:
        return None
    return vals[max(1, min(len(vals), round(q / 100 * len(vals) + 0.5))) - 1]


def question_rows(
    questions: list[dict], part: str = "", metrics: Iterable[str] = HEADLINE
) -> list[dict[str, Any]]:
    """The per-question table of one part: id, type, verdict, question, answer, gold, then headline metrics."""
    keep = list(metrics)
    rows = []
    for q in questions:
        if part and q.get("part", part) != part:
            continue
        gold = q.get("gold")
        row = {
            "id": q.get("id"),
            "type": q.get("type"),
            "verdict": q.get("verdict"),
            "question": q.get("question"),
            "answer": q.get("answer"),
            "gold": "; ".join(map(str, gold)) if isinstance(gold, list) else gold,
        }
        values = q.get("values") or {}
        row.update({k: values[k] for k in keep if k in values})
        rows.append(row)
    return rows
