"""The page's Evaluate tab: run the fast suite and show its scores (Streamlit view code).

The numbers are shaped by the pure helpers in ``page.ui_scores``; report and run
text is rendered escaped (``ui.md_escape``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from page import ui_helpers as ui
from page import ui_scores as scores
from page.common import guard, progress_bar
from rag.config import Settings


def _harness() -> Any:
    try:
        from rag.evaluation import cli as harness
    except ImportError:
        return None
    return harness if hasattr(harness, "run_fast") and hasattr(harness, "latest_report") else None


def _eval_dir(settings: Settings) -> Path:
    """Where the page's evaluation runs go: next to the store folder."""
    return Path(settings.store).parent / "eval-runs"


def evaluate_page(settings: Settings) -> None:
    st.subheader("Evaluate")
    harness = _harness()
    if harness is None:
        st.warning("The evaluation harness is not installed (rag.evaluation.cli). Use `rag eval` once it is.")
        return
    out_dir = _eval_dir(settings)
    st.caption(
        "The fast suite indexes its own corpora into separate evaluation stores next to yours; "
        "your library is not touched."
    )
    if st.button("Run the fast evaluation", key="eval_go", type="primary"):

        def run() -> dict:
            bar, update = progress_bar("Evaluating\u2026")
            result = harness.run_fast(settings, out_dir, progress=update)
            bar.empty()
            return result

        result = guard(run)
        if result is not None:
            st.session_state["eval_result"] = result
    if "eval_result" not in st.session_state:
        st.session_state["eval_result"] = guard(lambda: harness.latest_report(out_dir))
    scored = st.session_state.get("eval_result")
    if not scored:
        st.info("No evaluation run yet: run the fast evaluation above.")
        return
    render_scores(scored, out_dir)


def render_scores(scored: dict, out_dir: Path) -> None:
    """Headline metrics against baselines and anchors, plots and the per-question table, one part at a time."""
    run = scored.get("run") or {}
    st.caption(
        ui.md_escape(
            f"Suite {run.get('suite', run.get('dataset', '?'))} \u00b7 started "
            f"{run.get('started', run.get('created', '?'))} \u00b7 commit {run.get('commit', '?')}"
        )
    )
    parts = scores.eval_parts(scored)
    part = (
        st.selectbox("Part of the suite", parts, key="eval_part", format_func=lambda p: p or "all")
        if len(parts) > 1
        else (parts[0] if parts else "")
    )
    rows = scores.metric_rows(scored, part, headline=True)
    for start in range(0, len(rows), 5):
        for col, row in zip(st.columns(5), rows[start : start + 5]):
            delta = None if row["delta"] is None else f"{row['delta']:+.3f} vs {row['baseline']}"
            col.metric(
                row["name"],
                scores.fmt_num(row["value"]),
                delta=delta,
                help=row["help"],
                delta_color="inverse" if row["name"].startswith("latency") else "normal",
            )
    anchors = scores.anchor_rows(scored, part)
    if anchors:
        st.markdown("**Anchors**: our number next to the published number it should reproduce")
        st.dataframe(anchors, hide_index=True, key="eval_anchors")
    with st.expander("Every metric of this part, with confidence intervals and baselines", key="eval_all"):
        st.dataframe(
            scores.metric_table(scores.metric_rows(scored, part, headline=False)),
            hide_index=True,
            key="eval_metrics",
        )
    _score_charts(scored, part)
    questions = scores.question_rows(scored.get("questions") or [], part)
    if questions:
        st.markdown(f"**Questions** ({len(questions)})")
        st.dataframe(questions, hide_index=True, key="eval_questions")
    files = [
        (name, mime)
        for name, mime in (
            ("report.html", "text/html"),
            ("report.md", "text/markdown"),
            ("scores.json", "application/json"),
        )
        if (out_dir / name).is_file()
    ]
    for col, (name, mime) in zip(st.columns(len(files) + 2), files):
        col.download_button(
            f"Download {name}",
            (out_dir / name).read_bytes(),
            file_name=name,
            mime=mime,
            key=f"eval_dl_{name}",
            on_click="ignore",
        )


def _score_charts(scored: dict, part: str) -> None:
    """Retrieval by k, metrics by question type, and the latency histogram."""
    charts = st.columns(3)
    by_k = scores.by_k_columns(scored.get("by_k") or {}, part)
    if by_k:
        with charts[0]:
            st.markdown("**Retrieval by k**")
            st.line_chart(by_k, x="k")
    by_type = scores.by_type_columns(scored.get("by_type") or {}, part, metrics=scores.HEADLINE)
    if by_type:
        with charts[1]:
            st.markdown("**By question type**")
            st.bar_chart(by_type, x="type", stack=False)
    if scored.get("latency"):
        with charts[2]:
            lat = scored["latency"]
            st.markdown(
                f"**Latency, all questions** (p50 {scores.fmt_num(scores.percentile(lat, 50), 2)} s, "
                f"p95 {scores.fmt_num(scores.percentile(lat, 95), 2)} s)"
            )
            st.bar_chart(scores.latency_columns(lat), x="seconds", y="questions")
