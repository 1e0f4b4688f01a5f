"""Dossier's page: Ask, Brief, Library and Evaluate over one store.

A thin shell: read the widgets, call ``rag.pipeline``, render the result. The
work lives in ``rag/``; the pure rendering helpers in ``page.ui_helpers``, the
Library and Evaluate tabs in ``page.library_tab`` and ``page.eval_tab``. Report
text is untrusted and is only ever rendered escaped (``ui.md_escape``) or inside
the escaped HTML of ``ui.highlight_html``.

Run with ``bash scripts/run`` (or ``streamlit run app.py``).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from page import ui_helpers as ui
from page.common import error_text, guard, progress_bar, show_error, source_label
from page.eval_tab import evaluate_page
from page.library_tab import library_page
from rag.config import Settings
from rag.errors import EmbedderMismatchError, RagError
from rag.types import Filters

APP_DIR = Path(__file__).resolve().parent
DATA_DIR = APP_DIR / "data"  # the sample report indexed on first start
PAGES = ["Ask", "Brief", "Library", "Evaluate"]
log = logging.getLogger("dossier.app")


# --- expensive objects, built once per settings fingerprint ------------------------------------


@st.cache_resource(show_spinner="Loading the embedder and opening the store\u2026")
def _pipeline(fingerprint: str, _settings: Settings) -> Any:
    from rag.pipeline import build_pipeline

    return build_pipeline(_settings)


@st.cache_resource(show_spinner=False)
def _write_lock(fingerprint: str) -> threading.Lock:
    """One writer at a time per store (sessions share the pipeline)."""
    return threading.Lock()


@st.cache_resource(show_spinner="First start: indexing the sample report in data/\u2026")
def _first_start(fingerprint: str, _pipe: Any) -> dict | None:
    """Index data/ once when the store is empty, so a new user can ask a question at once."""
    if _pipe.sources() or not DATA_DIR.is_dir():
        return None
    with _write_lock(fingerprint):
        return _pipe.ingest([DATA_DIR]).to_dict()


@st.cache_data(show_spinner=False)
def _sources(fingerprint: str, _settings: Settings) -> list:
    return _pipeline(fingerprint, _settings).sources()


@st.cache_data(show_spinner=False)
def _status(fingerprint: str, _settings: Settings) -> dict:
    return _pipeline(fingerprint, _settings).status()


@st.cache_data(show_spinner=False, max_entries=64)
def _document(fingerprint: str, source: str, doc_id: str, _settings: Settings) -> Any:
    """The stored report a citation points into, or None if it changed since."""
    doc = _pipeline(fingerprint, _settings).document(source)
    return doc if doc is not None and (not doc_id or doc.doc_id == doc_id) else None


def _library_changed() -> None:
    """Forget cached views of the store after an ingest, forget or re-index."""
    _sources.clear()
    _status.clear()
    _document.clear()


# --- small shared pieces ---------------------------------------------------------------------------


def _date_range(infos: list, prefix: str) -> tuple[Any, Any]:
    """A toggle and a date range; returns (from, to) or (None, None)."""
    lo, hi = ui.date_bounds(infos)
    if lo is None:
        st.caption("No stored report carries a publication date.")
        return None, None
    if not st.toggle("Limit by publication date", key=f"{prefix}_use_dates"):
        return None, None
    first, last = ui.iso_to_date(lo), ui.iso_to_date(hi)
    if first is None or last is None:
        return None, None
    value = st.date_input("Published between", value=(first, last), key=f"{prefix}_dates")
    # While the user is picking, the widget holds one date.
    picked = list(value) if isinstance(value, (tuple, list)) else [value]
    st.caption("Reports without a date are left out while a date range is set.")
    return (picked[0] if picked else None), (picked[1] if len(picked) > 1 else None)


def _show_span(
    fp: str, settings: Settings, source: str, doc_id: str, start: int, end: int, quote: str, key: str
) -> None:
    """The cited report with the span highlighted (escaped HTML; our own <mark> only)."""
    doc = _document(fp, source, doc_id, settings)
    if doc is None:
        st.caption("This report was changed or removed after the answer was given; the quoted text was:")
        st.markdown(ui.md_escape(quote))
        return
    st.caption(
        ui.md_escape(
            f"{doc.title} \u00b7 {doc.source} \u00b7 {doc.date or 'undated'} "
            f"\u00b7 characters {start}\u2013{end}"
        )
    )
    whole = st.toggle("Show the whole report", key=f"whole_{key}")
    st.markdown(
        ui.highlight_html(doc.text, start, end, context=None if whole else 400), unsafe_allow_html=True
    )


def _citations(fp: str, settings: Settings, citations: list, key: str) -> None:
    for c in citations:
        with st.expander(ui.citation_label(c), key=f"cite_{key}_{c.key}"):
            _show_span(fp, settings, c.source, c.doc_id, c.start, c.end, c.quote, key=f"{key}_{c.key}")


def _flagged(sentences: list) -> None:
    bad = ui.unsupported_sentences(sentences)
    if bad:
        lines = [
            f"- Sentence {i}: \u201c{ui.md_escape(text)}\u201d \u2014 {ui.md_escape('; '.join(problems))}"
            for i, text, problems in bad
        ]
        st.warning("\u26a0 Not supported by the cited passages:\n" + "\n".join(lines))


# --- sidebar ----------------------------------------------------------------------------------------------


def sidebar(status: dict, infos: list) -> Filters:
    """Status panel and the Ask filters."""
    with st.sidebar:
        st.title(":material/folder_open: Dossier")
        st.caption("Cited answers and briefs from your reports.")
        headline, explanation = ui.mode_lines(status)
        box = st.info if status.get("mode") != "llm" else st.success
        box(f"**{ui.md_escape(headline)}**  \n{ui.md_escape(explanation)}")
        size = ", ".join(
            [
                ui.plural(status.get("reports"), "report"),
                ui.plural(status.get("chunks"), "chunk"),
                ui.human_bytes(status.get("store_bytes")),
            ]
        )
        rows = [
            f"**Embedder:** {ui.md_escape(str(status.get('embedder')))} ({status.get('dimension')} dimensions)",
            f"**Store:** {ui.md_escape(str(status.get('store')))}",
            f"**Size:** {size}",
        ]
        if status.get("mode") == "llm":
            rows.insert(0, f"**Endpoint:** {ui.md_escape(str(status.get('llm_endpoint')))}")
        st.markdown("  \n".join(rows))
        st.divider()
        st.subheader("Ask filters")
        names = [i.source for i in infos]
        if "flt_sources" in st.session_state:  # a forgotten report cannot stay selected
            st.session_state["flt_sources"] = [s for s in st.session_state["flt_sources"] if s in names]
        chosen = st.multiselect(
            "Reports", names, key="flt_sources", format_func=source_label(infos), placeholder="All reports"
        )
        date_from, date_to = _date_range(infos, "flt")
        filters = ui.make_filters(chosen, date_from, date_to)
        st.caption(ui.md_escape(f"Questions search {filters.describe()}."))
    return filters


# --- Ask --------------------------------------------------------------------------------------------------------


def _render_answer(answer: Any, fp: str, settings: Settings, key: str) -> None:
    llm_configured = settings.llm_enabled
    if answer.notice:
        st.caption(ui.md_escape(f"\u2139 {answer.notice}"))
    if answer.standalone_question and answer.standalone_question.strip() != answer.question.strip():
        st.caption(ui.md_escape(f"Understood as: {answer.standalone_question}"))
    if answer.abstained:
        st.warning(ui.md_escape(answer.answer), icon=":material/search_off:")
        if answer.searched and answer.searched not in answer.answer:
            st.caption(ui.md_escape(f"Searched: {answer.searched}"))
        if answer.passages:
            st.markdown("**Closest passages** (they do not answer the question):")
            for n, hit in enumerate(answer.passages[:3], 1):
                ch = hit.chunk
                label = ui.md_escape(
                    f"Passage {n}: {ui.shorten(ch.title or ch.source, 70)} \u2014 {ch.source} \u00b7 "
                    f"{ch.date or 'undated'}"
                )
                with st.expander(label, key=f"near_{key}_{n}"):
                    _show_span(
                        fp, settings, ch.source, ch.doc_id, ch.start, ch.end, ch.text, key=f"{key}_p{n}"
                    )
        return
    st.markdown(ui.answer_markdown(answer))
    _flagged(answer.sentences)
    _citations(fp, settings, answer.citations, key)
    if answer.mode == "extractive":
        why = "the LLM answer was not available" if llm_configured else "no LLM is configured"
        st.caption(f"Extractive answer: sentences quoted from the reports ({why}).")


def _answer(pipe: Any, question: str, history: list[dict], filters: Filters) -> Any:
    """Stream the answer in LLM mode; in extractive mode it comes at once."""
    if pipe.mode != "llm":
        with st.spinner("Searching the reports\u2026"):
            return pipe.ask(question, history=history, filters=filters)
    status, body, text, answer = st.empty(), st.empty(), "", None
    for kind, value in pipe.ask_stream(question, history=history, filters=filters):
        if kind == "status":
            status.caption(ui.md_escape(str(value)))
        elif kind == "delta":
            text += str(value)
            body.markdown(ui.md_escape(text) + " \u258c")
        elif kind == "answer":
            answer = value
    status.empty()
    body.empty()
    return answer


def _clear_chat() -> None:
    st.session_state["messages"] = []


def ask_page(pipe: Any, fp: str, settings: Settings, filters: Filters, infos: list) -> None:
    messages: list[dict] = st.session_state.setdefault("messages", [])
    head, clear = st.columns([5, 1], vertical_alignment="center")
    head.caption(ui.md_escape(f"Ask about {filters.describe()}. Follow-up questions use the conversation."))
    clear.button("Clear chat", key="ask_clear", on_click=_clear_chat, disabled=not messages)
    if not infos:
        st.info("The library is empty: add reports in the Library tab first.")
    chat = st.container()
    with chat:
        for i, msg in enumerate(messages):
            with st.chat_message(msg["role"]):
                if msg.get("error"):
                    show_error(msg["error"])
                elif msg.get("answer") is not None:
                    _render_answer(msg["answer"], fp, settings, key=str(i))
                else:
                    st.markdown(ui.md_escape(msg["content"]))
    question = st.chat_input("Ask a question about your reports", key="ask_input")
    if not question:
        return
    history = ui.history_for(messages)
    messages.append({"role": "user", "content": question})
    with chat:
        with st.chat_message("user"):
            st.markdown(ui.md_escape(question))
        with st.chat_message("assistant"):
            try:
                answer = _answer(pipe, question, history, filters)
            except Exception as exc:  # a RagError says what to do; anything else is a bug, logged
                text = error_text(exc, "while answering")
                messages.append({"role": "assistant", "content": "", "error": text})
                show_error(text)
                return
            messages.append({"role": "assistant", "content": answer.answer, "answer": answer})
            _render_answer(answer, fp, settings, key=str(len(messages) - 1))


# --- Brief -----------------------------------------------------------------------------------------------------


def _make_brief(pipe: Any, filters: Filters, words: int) -> dict:
    bar, update = progress_bar("Summarising\u2026")
    try:
        brief = pipe.brief(filters, words=words, progress=update)
        summary = pipe.summary(filters, progress=update)
    finally:
        bar.empty()
    return {"brief": brief, "summary": summary, "scope": filters.describe()}


def _brief_exports(result: dict) -> tuple[str, str]:
    from rag.present import brief_markdown, summary_to_markdown

    brief, summary = result["brief"], result["summary"]
    md = brief_markdown(brief) + "\n\n" + summary_to_markdown(summary)
    data = json.dumps(
        {"brief": brief.to_dict(), "summary": summary}, ensure_ascii=False, indent=2, default=str
    )
    return md, data


def brief_page(pipe: Any, fp: str, settings: Settings, infos: list) -> None:
    st.subheader("Brief")
    names = [i.source for i in infos]
    left, right = st.columns([3, 1])
    with left:
        chosen = st.multiselect(
            "Reports", names, key="brief_sources", format_func=source_label(infos), placeholder="All reports"
        )
        date_from, date_to = _date_range(infos, "brief")
    words = right.number_input(
        "Word limit", min_value=30, max_value=600, value=int(settings.brief_words), step=10, key="brief_words"
    )
    if st.button("Generate brief", key="brief_go", type="primary", disabled=not infos):
        filters = ui.make_filters(chosen, date_from, date_to)
        result = guard(lambda: _make_brief(pipe, filters, int(words)))
        if result is not None:
            st.session_state["brief_result"] = result
    result = st.session_state.get("brief_result")
    if not result:
        st.caption(
            "Choose reports (or none for all), optionally a date range, and a word limit, then generate."
        )
        return
    render_brief(result, fp, settings)


def render_brief(result: dict, fp: str, settings: Settings) -> None:
    """The cited paragraph, the structured summary and the two downloads."""
    brief, summary = result["brief"], result["summary"]
    st.markdown(f"#### {ui.md_escape(summary.get('title') or 'Brief')}")
    st.caption(ui.md_escape(f"Covers {result['scope']} \u00b7 {brief.mode} mode"))
    for notice in dict.fromkeys(n for n in (brief.notice, summary.get("notice")) if n):
        st.caption(ui.md_escape(f"\u2139 {notice}"))
    st.markdown(ui.sentences_markdown(brief.sentences, brief.text))
    _flagged(brief.sentences)
    dropped = brief.dropped
    if dropped:
        st.caption(
            "Left out of the brief because the reports do not support them: "
            + "; ".join(
                f"\u201c{ui.md_escape(s.text)}\u201d ({ui.md_escape('; '.join(s.problems))})" for s in dropped
            )
        )
    _citations(fp, settings, brief.citations, key="brief")
    st.markdown("#### Structured summary")
    quotes = st.toggle("Show the quoted passages", key="brief_quotes")
    bottom = (summary.get("bottom_line") or {}).get("text")
    if bottom:
        st.markdown(f"**Bottom line:** {ui.md_escape(bottom)}")
    sections = ui.summary_sections(summary, quotes=quotes)
    for row in range(0, len(sections), 2):  # two sections per row, so rows line up
        for col, (heading, body) in zip(st.columns(2), sections[row : row + 2]):
            col.markdown(f"**{heading}**\n\n{body}")
    exports = guard(lambda: _brief_exports(result))
    if exports:
        md, data = exports
        a, b, _ = st.columns([1, 1, 3])
        a.download_button(
            "Download Markdown",
            md,
            file_name="brief.md",
            mime="text/markdown",
            key="brief_dl_md",
            on_click="ignore",
        )
        b.download_button(
            "Download JSON",
            data,
            file_name="brief.json",
            mime="application/json",
            key="brief_dl_json",
            on_click="ignore",
        )


# --- the page --------------------------------------------------------------------------------------------------


def _open_pipeline(settings: Settings, fp: str) -> Any:
    """The cached pipeline, or a message the user can act on (and a way out of an embedder mismatch)."""
    try:
        return _pipeline(fp, settings)
    except EmbedderMismatchError as exc:
        show_error(str(exc))
        if st.button("Rebuild the store for the configured embedder", key="mismatch_reindex", type="primary"):
            from rag.pipeline import build_pipeline

            if guard(lambda: build_pipeline(settings, reindex=True).reindex()) is not None:
                st.cache_resource.clear()
                st.cache_data.clear()
                st.rerun()
    except Exception as exc:
        text = error_text(exc, "while starting")
        if not isinstance(exc, RagError):  # a bug at start-up is most often a broken installation
            text += " Check the installation (bash scripts/setup)."
        show_error(text)
    st.stop()


def main() -> None:
    st.set_page_config(page_title="Dossier", page_icon="\U0001f5c2\ufe0f", layout="wide")
    try:
        settings = Settings.from_env()
    except RagError as exc:
        show_error(str(exc))
        st.stop()
    fp = settings.fingerprint()
    pipe = _open_pipeline(settings, fp)
    first = guard(lambda: _first_start(fp, pipe))
    infos = guard(lambda: _sources(fp, settings)) or []
    status = guard(lambda: _status(fp, settings)) or {}
    filters = sidebar(status, infos)
    tabs = st.tabs(PAGES, key="page", on_change="rerun")  # only the open tab runs
    with tabs[0]:
        if tabs[0].open:
            ask_page(pipe, fp, settings, filters, infos)
    with tabs[1]:
        if tabs[1].open:
            brief_page(pipe, fp, settings, infos)
    with tabs[2]:
        if tabs[2].open:
            library_page(
                pipe, fp, settings, infos, first, write_lock=_write_lock, library_changed=_library_changed
            )
    with tabs[3]:
        if tabs[3].open:
            evaluate_page(settings)


main()
