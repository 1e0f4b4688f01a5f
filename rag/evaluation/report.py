"""Reports of a scored evaluation run (JSON, Markdown, self-contained HTML) and run comparison.

The scored result is a plain dict (written as ``scores.json``)::

    {"run": {"id": str, "created": iso str, "dataset": str, ...any metadata},
     "metrics": {name: {"value": float | None, "ci": [lo, hi] | None, "n": int}},
     "by_type": {type: {name: {"value", "ci", "n"}}},
     "by_k": {series: {k: value}},                 # e.g. {"recall_chunk": {"1": .4, "5": .7}}
     "baselines": {baseline: {name: {"value", "ci", "n"}}},   # e.g. "bm25", "lead3"
     "anchors": {name: {"value": float, "expected": float, "source": str}},
     "questions": [{"id", "question", "type", "gold": [str], "answer": str,
                    "citations": [str], "verdict": str, "values": {name: float}}],
     "latency": [seconds, ...]}

Only ``run`` and ``metrics`` are required. ``questions[].values`` holds the per-question
metric values that ``compare`` pairs up; verdict "correct" means success, anything else
is listed among the failures.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.evaluation import svg
from rag.evaluation.qa_metrics import latency_summary
from rag.evaluation.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, paired_bootstrap

MAX_QUESTION_ROWS = 500
_NUMERIC = re.compile(r"[-+]?\d[\d.,]*|–|\[[-+\d., ]+\]")


# --- comparison -----------------------------------------------------------------------------


def per_question(scored: Mapping[str, Any], metric: str) -> dict[str, float]:
    """``{question id: value}`` of one metric from the scored result's question rows."""
    part, _, short = metric.rpartition("/")  # "gold/f1": rows of part "gold" store it as "f1"
    out = {}
    for row in scored.get("questions") or []:
        if part and row.get("part") not in (None, part):
            continue
        values = row.get("values") or {}
        value = values.get(metric, values.get(short) if part else None)
        if value is not None:
            out[str(row["id"])] = float(value)
    return out


def _compare_one(
    name: str,
    cur: Mapping[str, Any],
    base: Mapping[str, Any],
    current: Mapping[str, Any],
    baseline: Mapping[str, Any],
    sign: int,
    **boot: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "metric": name,
        "current": cur.get("value"),
        "baseline": base.get("value"),
        "delta": None,
        "ci": None,
        "p_value": None,
        "method": "ci_overlap",
        "regressed": False,
    }
    if row["current"] is None or row["baseline"] is None:
        row["method"] = "missing"
        return row
    row["delta"] = row["current"] - row["baseline"]
    a, b = per_question(current, name), per_question(baseline, name)
    shared = a.keys() & b.keys()
    if shared:
        diff = paired_bootstrap({q: a[q] for q in shared}, {q: b[q] for q in shared}, **boot)
        row.update(method="paired", ci=[diff.lo, diff.hi], p_value=diff.p_value, n_paired=diff.n)
        if diff.lo is not None and diff.hi is not None:  # always, as ``shared`` is not empty
            bound = diff.hi if sign > 0 else -diff.lo  # the worse-side bound, in "higher is better" terms
            row["regressed"] = bound < 0
    elif cur.get("ci") and base.get("ci"):
        worse = cur["ci"][1] < base["ci"][0] if sign > 0 else cur["ci"][0] > base["ci"][1]
        row["regressed"] = bool(worse)
    return row


def compare(
    current: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    lower_is_better: Collection[str] = (),
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[dict[str, Any]]:
    """One row per metric scored in either run: values, delta, CI of the delta and a ``regressed`` flag.

    With per-question values for the metric in both runs (``questions[].values``, matched
    by id), the paired bootstrap decides: regressed iff the whole 95% CI of the delta is
    on the worse side of 0. Otherwise the metrics' own CIs decide: regressed iff they do
    not overlap and the current one is on the worse side. Metrics in ``lower_is_better``
    are worse when higher. ``method`` says which rule applied ("missing": one run lacks it).
    """
    cur_m, base_m = current.get("metrics", {}), baseline.get("metrics", {})
    names = list(dict.fromkeys([*cur_m, *base_m]))
    return [
        _compare_one(
            n,
            cur_m.get(n, {}),
            base_m.get(n, {}),
            current,
            baseline,
            -1 if n in lower_is_better else 1,
            n_resamples=n_resamples,
            seed=seed,
        )
        for n in names
    ]


# --- formatting helpers ----------------------------------------------------------------------


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return str(value)


def _ci(ci: Sequence[float] | None) -> str:
    return f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else "–"


def _delta(row: Mapping[str, Any] | None) -> str:
    if not row or row.get("delta") is None:
        return "–"
    flag = " ▼ regressed" if row["regressed"] else ""
    return f"{row['delta']:+.3f}{flag}"


def _md(text: Any) -> str:
    """Escape a value for a Markdown table cell (pipes, newlines, raw HTML)."""
    s = "" if text is None else str(text)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return out + [""]


def _failures(scored: Mapping[str, Any], limit: int) -> list[Mapping[str, Any]]:
    return [q for q in scored.get("questions") or [] if q.get("verdict") != "correct"][:limit]


# --- Markdown --------------------------------------------------------------------------------


def _slice_tables(scored: Mapping[str, Any]) -> list[tuple[str, str, list[str], list[list[Any]]]]:
    """(key, title, header, rows) of the optional sections, shared by the Markdown and HTML reports."""
    out: list[tuple[str, str, list[str], list[list[Any]]]] = []
    by_k = scored.get("by_k") or {}
    if by_k:
        ks = sorted({int(k) for s in by_k.values() for k in s})
        rows = [[name, *(_num(s.get(str(k), s.get(k))) for k in ks)] for name, s in by_k.items()]
        out.append(("by_k", "Metrics by k", ["series", *(f"k={k}" for k in ks)], rows))
    by_type = scored.get("by_type") or {}
    if by_type:
        names = list(dict.fromkeys(m for t in by_type.values() for m in t))
        rows = [
            [
                t,
                *(_num(v.get(m, {}).get("value")) for m in names),
                max((x.get("n", 0) for x in v.values()), default=0),
            ]
            for t, v in by_type.items()
        ]
        out.append(("by_type", "By question type", ["type", *names, "n"], rows))
    baselines = scored.get("baselines") or {}
    if baselines:
        rows = [
            [b, m, _num(v.get("value")), _ci(v.get("ci"))]
            for b, ms in baselines.items()
            for m, v in ms.items()
        ]
        out.append(("baselines", "Baselines", ["baseline", "metric", "value", "95% CI"], rows))
    anchors = scored.get("anchors") or {}
    if anchors:
        rows = [
            [n, _num(a.get("value")), _num(a.get("expected")), a.get("source", "")]
            for n, a in anchors.items()
        ]
        out.append(("anchors", "Anchors", ["anchor", "value", "expected", "source"], rows))
    if scored.get("latency"):
        lat = latency_summary(scored["latency"])
        rows = [[lat["n"], *(_num(lat[k]) for k in ("p50", "p95", "mean", "max"))]]
        out.append(("latency", "Latency (s)", ["n", "p50", "p95", "mean", "max"], rows))
    return out


def render_markdown(
    scored: Mapping[str, Any], comparison: Sequence[Mapping[str, Any]] | None = None, worst: int = 5
) -> str:
    """A Markdown summary for a PR comment: headline table, slices, baselines, anchors, failures."""
    run = scored.get("run", {})
    deltas = {r["metric"]: r for r in comparison or []}
    lines = [f"# Evaluation: {_md(run.get('id', 'run'))}", ""]
    lines += [f"- {_md(k)}: {_md(v)}" for k, v in run.items() if not isinstance(v, (dict, list))] + [""]
    rows = [
        [name, _num(m.get("value")), _ci(m.get("ci")), m.get("n", ""), _delta(deltas.get(name))]
        for name, m in scored.get("metrics", {}).items()
    ]
    lines += ["## Metrics", ""] + _md_table(["metric", "value", "95% CI", "n", "Δ vs baseline"], rows)
    for _key, title, header, rows in _slice_tables(scored):
        lines += [f"## {title}", ""] + _md_table(header, rows)
    fails = _failures(scored, worst)
    if fails:
        rows = [
            [
                q.get("id"),
                q.get("question"),
                "; ".join(q.get("gold") or []),
                q.get("answer"),
                q.get("verdict"),
            ]
            for q in fails
        ]
        lines += [f"## First {len(fails)} failures", ""] + _md_table(
            ["id", "question", "gold", "answer", "verdict"], rows
        )
    return "\n".join(lines)


# --- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{max-width:760px;width:100%;font-size:11px}.chart .grid{stroke:#e5e5e5}.chart text{fill:#444}
.regressed{color:#b00020;font-weight:600}.correct{background:#e8f5e9}.wrong{background:#fdecea}
.other{background:#fff8e1}dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dl.meta dt{font-weight:600}.note{color:#666}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A table; cells that hold a number, a CI or a dash are right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(c)}</td>' if _NUMERIC.fullmatch(str(c)) else f"<td>{_e(c)}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metrics_html(scored: Mapping[str, Any], deltas: Mapping[str, Mapping[str, Any]]) -> str:
    rows = []
    for name, m in scored.get("metrics", {}).items():
        d = deltas.get(name)
        cls = ' class="regressed"' if d and d.get("regressed") else ""
        rows.append(
            f'<tr><td>{_e(name)}</td><td class="num">{_e(_num(m.get("value")))}</td>'
            f'<td class="num">{_e(_ci(m.get("ci")))}</td><td class="num">{_e(m.get("n", ""))}</td>'
            f'<td class="num"><span{cls}>{_e(_delta(d))}</span></td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("metric", "value", "95% CI", "n", "Δ vs baseline"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _questions_html(questions: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for q in questions[:MAX_QUESTION_ROWS]:
        verdict = str(q.get("verdict", ""))
        cls = "correct" if verdict == "correct" else "wrong" if verdict in ("wrong", "incorrect") else "other"
        cells = [
            q.get("id"),
            q.get("type"),
            q.get("question"),
            "; ".join(map(str, q.get("gold") or [])),
            q.get("answer"),
            "; ".join(map(str, q.get("citations") or [])),
            verdict,
        ]
        rows.append(f'<tr class="{cls}">' + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("id", "type", "question", "gold", "answer", "citations", "verdict")
    )
    more = (
        f'<p class="note">Showing {MAX_QUESTION_ROWS} of {len(questions)} questions; '
        "all are in scores.json.</p>"
        if len(questions) > MAX_QUESTION_ROWS
        else ""
    )
    return f"{more}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _chart(key: str, scored: Mapping[str, Any]) -> str:
    if key == "by_k":
        return svg.line_chart(scored["by_k"], "metric by k")
    if key == "by_type":
        by_type = scored["by_type"]
        names = list(dict.fromkeys(m for t in by_type.values() for m in t))[:6]
        values = {t: {m: v[m].get("value") for m in names if m in v} for t, v in by_type.items()}
        return svg.bar_chart(values, "metric by question type")
    if key == "latency":
        return svg.histogram(scored["latency"], title="latency (s)")
    return ""


def _sections_html(scored: Mapping[str, Any]) -> list[str]:
    parts = []
    for key, title, header, rows in _slice_tables(scored):
        parts += [f"<h2>{_e(title)}</h2>", _chart(key, scored), _html_table(header, rows)]
    if scored.get("questions"):
        parts += ["<h2>Questions</h2>", _questions_html(scored["questions"])]
    return parts


def render_html(scored: Mapping[str, Any], comparison: Sequence[Mapping[str, Any]] | None = None) -> str:
    """A self-contained HTML page (inline CSS and SVG, no scripts, no external links); all text escaped."""
    run = scored.get("run", {})
    title = f"Evaluation: {run.get('id', 'run')}"
    meta = "".join(
        f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in run.items() if not isinstance(v, (dict, list))
    )
    deltas = {r["metric"]: r for r in comparison or []}
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<dl class="meta">{meta}</dl>',
        "<h2>Metrics</h2>",
        _metrics_html(scored, deltas),
        *_sections_html(scored),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_report(
    scored: Mapping[str, Any],
    out_dir: str | Path,
    baseline: Mapping[str, Any] | None = None,
    *,
    lower_is_better: Collection[str] = (),
) -> dict[str, Path]:
    """Write ``scores.json``, ``report.md`` and ``report.html`` (and ``comparison.json`` with a baseline).

    Returns the paths by kind ("json", "md", "html", "comparison"). NaN values are
    refused by the JSON writer: use None for a metric that could not be computed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    comparison = compare(scored, baseline, lower_is_better=lower_is_better) if baseline else None
    paths = {"json": out / "scores.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(
        json.dumps(scored, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )
    paths["md"].write_text(render_markdown(scored, comparison) + "\n", encoding="utf-8")
    paths["html"].write_text(render_html(scored, comparison), encoding="utf-8")
    if comparison is not None:
        paths["comparison"] = out / "comparison.json"
        paths["comparison"].write_text(
            json.dumps(comparison, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
    return paths
