"""The page: AppTest drives app.py headlessly; the pure helpers in rag.ui_helpers are tested directly.

Every AppTest starts on an empty temp store (RAG_STORE from conftest), so the page's
first start indexes the sample report in data/.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from rag import ui_helpers as ui
from rag.types import Answer, Citation, SentenceCheck

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
SAMPLE = "india-russia-working-group-moscow.txt"
EVIL = (
    "Evil Report\n\nThe pipeline audit found <script>alert(1)</script> in the quarterly filing of Zorblax Mining.\n\n"
    'Zorblax Mining reported revenue of 42 million dollars <img src=x onerror="alert(2)"> in 2023, '
    "according to the audit [click](javascript:alert(3)) and :red[alarm] $x$.\n"
)


# --- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_streamlit_caches():
    """Each test gets fresh cached resources (pipeline, store) on its own temp store."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def _app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if page:
        at.session_state["page"] = page
    at.run()
    _no_exception(at)
    return at


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _texts(nodes) -> str:
    return "\n".join(str(n.value) for n in nodes)


def _unescape_md(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _ask(at: AppTest, question: str) -> AppTest:
    at.chat_input(key="ask_input").set_value(question).run()
    _no_exception(at)
    return at


def _html_blocks(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.proto.allow_html]


def _assert_safe_html(block: str) -> None:
    """Only our own tags may appear in a block rendered with unsafe_allow_html."""
    tags = set(re.findall(r"</?([a-zA-Z][\w-]*)", block))
    assert tags <= {"div", "mark", "br"}, tags
    assert "<script" not in block and "<img" not in block


# --- pure helpers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, expected",
    [
        ("report.txt", "report.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.md", "evil.md"),
        ("/abs/path/r.pdf", "r.pdf"),
        ("..", "upload"),
        ("...", "upload"),
        ("", "upload"),
        (".hidden.txt", "hidden.txt"),
        ("bad\x00na\x1fme\x7f.txt", "badname.txt"),
        ("rtl\u202egnp.txt", "rtlgnp.txt"),
        ("Доклад 報告 é.docx", "Доклад 報告 é.docx"),
        ("  spaced name.html  ", "spaced name.html"),
        ("trailing dots...", "trailing dots"),
    ],
)
def test_sanitize_filename(given, expected):
    assert ui.sanitize_filename(given) == expected


def test_sanitize_filename_keeps_long_names_under_the_limit_with_their_suffix():
    name = ui.sanitize_filename("é" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= ui.MAX_NAME_BYTES


def test_highlight_html_escapes_everything_but_our_mark():
    text = EVIL + "\n\nMore text after a blank line.\r\nAnd a CR line."
    start = text.index("<script>")
    end = text.index("</script>") + len("</script>")
    out = ui.highlight_html(text, start, end, context=None)
    assert "\n" not in out and "\r" not in out  # one HTML block: Markdown never resumes inside it
    assert set(re.findall(r"</?([a-zA-Z][\w-]*)", out)) == {"div", "mark", "br"}
    assert '<mark class="dossier-cited">&lt;script&gt;alert(1)&lt;/script&gt;</mark>' in out
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in out
    assert "&#36;x&#36;" in out and "&#58;red&#91;alarm&#93;" in out  # no math or directives either
    plain = html.unescape(re.sub(r"<br>", "\n", re.sub(r"</?(div|mark)[^>]*>", "", out)))
    assert plain == text.replace("\r\n", "\n")


def test_highlight_html_excerpt_and_bad_spans():
    text = "word " * 400 + "TARGET" + " word" * 400
    start = text.index("TARGET")
    out = ui.highlight_html(text, start, start + 6, context=50)
    assert out.count("word") < 30 and "<mark" in out and "\u2026" in out
    assert "<mark" not in ui.highlight_html("abc", 5, 2)  # empty or reversed spans mark nothing
    assert "a<mark" in ui.highlight_html("abc", 1, 99, context=None)


def test_md_escape_disarms_markdown_html_and_directives():
    out = ui.md_escape("<script>alert(1)</script> [x](javascript:y) :red[z] $m$ **b** # h")
    assert "<script>" not in out and "\\<script\\>" in out
    assert "\\[x\\]\\(javascript\\:y\\)" in out and "\\:red\\[z\\]" in out and "\\$m\\$" in out
    assert _unescape_md(out) == "<script>alert(1)</script> [x](javascript:y) :red[z] $m$ **b** # h"


def _answer(**kw) -> Answer:
    c = Citation(key=1, source="r.txt", doc_id="d", chunk_id="c", start=0, end=5, quote="Alpha", title="R")
    base = dict(question="q?", answer="Alpha. Beta <b>42</b>.", abstained=False, mode="extractive", citations=[c],
                sentences=[SentenceCheck("Alpha.", [1], True), SentenceCheck("Beta <b>42</b>.", [1], False,
                                                                             ['number "42" not in cited passages'])])
    base.update(kw)
    return Answer(**base)


def test_answer_markdown_markers_and_flags():
    a = _answer()
    out = ui.answer_markdown(a)
    assert "Alpha\\. :blue-badge[1]" in out
    assert "\\<b\\>42\\<\\/b\\>" in out and ui.UNSUPPORTED_FLAG in out
    assert ui.unsupported_sentences(a.sentences) == [(2, "Beta <b>42</b>.", ['number "42" not in cited passages'])]
    tail = SentenceCheck("The reports do not say when.", [], False)
    assert ui.unsupported_sentences([tail]) == []  # the uncited "do not say" tail is not a failure
    assert ui.answer_markdown(_answer(abstained=True, answer="The reports do not say X.")) == \
        "The reports do not say X\\."


def test_citation_label_and_history():
    c = _answer().citations[0]
    assert _unescape_md(ui.citation_label(c)) == "[1] R \u2014 r.txt \u00b7 undated"
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "answer": object()},
            {"role": "assistant", "content": "", "error": "boom"}]
    assert ui.history_for(msgs) == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


def test_eval_helpers_shape_charts_and_tables():
    scored = {
        "metrics": {"f1": {"value": 0.5, "ci": [0.4, 0.6], "n": 10}, "latency_p95": {"value": 1.2, "ci": None, "n": 10}},
        "baselines": {"bm25": {"f1": {"value": 0.4, "ci": None, "n": 10}}},
        "anchors": {"rouge1": {"value": 0.41, "expected": 0.42, "source": "paper"}},
        "by_k": {"recall": {"1": 0.3, "5": 0.7, "10": 0.9}},
        "by_type": {"factoid": {"f1": {"value": 0.6}}, "list": {"f1": {"value": 0.3}}},
        "latency": [0.1, 0.2, 0.2, 1.5],
        "questions": [{"id": "q1", "question": "Who?", "type": "factoid", "gold": ["A"], "answer": "A",
                       "verdict": "correct", "values": {"f1": 1.0}}],
    }
    rows = ui.headline_metrics(scored)
    assert rows[0]["delta"] == pytest.approx(0.1) and rows[0]["baseline"] == "bm25"
    assert rows[1]["delta"] is None
    assert ui.by_k_columns(scored["by_k"]) == {"k": [1, 5, 10], "recall": [0.3, 0.7, 0.9]}
    assert ui.by_type_columns(scored["by_type"]) == {"type": ["factoid", "list"], "f1": [0.6, 0.3]}
    assert sum(ui.latency_columns(scored["latency"])["questions"]) == 4
    assert ui.percentile(scored["latency"], 50) == 0.2
    assert ui.question_rows(scored["questions"])[0]["f1"] == 1.0
    assert ui.anchor_rows(scored)[0]["expected"] == 0.42


def test_summary_sections_escape_report_text():
    cite = [{"source": "a.txt", "start": 0, "end": 3, "quote": "<b>x</b>"}]
    summary = {"people": [{"name": "<script>X</script>", "title": "Chief", "affiliation": None, "citations": cite}],
               "places": [], "timeline": [{"date": "2024-01-02", "date_text": "2 Jan", "event": "met",
                                           "citations": cite}],
               "sources": [{"source": "a.txt"}]}
    sections = dict(ui.summary_sections(summary, quotes=True))
    assert set(sections) == {"People", "Timeline"}
    assert "\\<script\\>X\\<\\/script\\>" in sections["People"] and "<script>" not in sections["People"]
    assert "\\<b\\>x\\<\\/b\\>" in sections["People"]


# --- uploads through the helper, with real files ------------------------------------------------------------


def _pdf_bytes(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def _docx_bytes(text: str) -> bytes:
    import docx

    d = docx.Document()
    for para in text.split("\n\n"):
        d.add_paragraph(para)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_ingest_uploads_good_and_bad_files(tmp_path, embedder):
    from rag.config import Settings
    from rag.pipeline import build_pipeline

    pipe = build_pipeline(Settings(store=tmp_path / "store", max_file_mb=0.05), embedder=embedder)
    folder = tmp_path / "uploads"
    body = "The harbour authority of Valmora approved a new container terminal on 3 March 2024.\n\n" * 3
    files = [
        ("../../escape/valmora.txt", body.encode()),
        ("notes.md", ("# Notes\n\n" + body.replace("Valmora", "Ostrel")).encode()),
        ("page.html", f"<html><head><title>Page</title></head><body><p>{body.replace('Valmora', 'Brin')}</p>"
                      "<script>alert(1)</script></body></html>".encode()),
        ("memo.docx", _docx_bytes(body.replace("Valmora", "Quill"))),
        ("scan.pdf", _pdf_bytes(body.replace("Valmora", "Tarn"))),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf"),
        ("huge.txt", b"x " * 40_000),
        ("Доклад.txt", "Отчёт о порте Валмора. ".encode() * 20),
        ("empty.txt", b""),
    ]
    progress = []
    report = ui.ingest_uploads(pipe, files, folder, progress=lambda d, t, n: progress.append((d, t)))
    added = {e["path"] for e in report.added}
    rejected = {e["path"]: e["reason"] for e in report.rejected}
    assert added == {"valmora.txt", "notes.md", "page.html", "memo.docx", "scan.pdf", "Доклад.txt"}
    assert set(rejected) == {"broken.pdf", "huge.txt", "empty.txt"}
    assert "too large" in rejected["huge.txt"] and "RAG_MAX_FILE_MB" in rejected["huge.txt"]
    assert progress and progress[-1][0] == progress[-1][1]
    assert not (tmp_path / "escape").exists() and list(folder.iterdir()) == []  # nothing escaped, nothing left
    assert {s.source for s in pipe.sources()} == added
    lines = ui.ingest_summary(report)
    assert [lvl for lvl, _ in lines].count("error") == 3 and lines[0][0] == "success"

    again = ui.ingest_uploads(pipe, [("valmora.txt", body.encode()), ("copy.txt", body.encode())], folder)
    assert [e["path"] for e in again.unchanged] == ["valmora.txt", "copy.txt"]
    assert "same text as valmora.txt" in ui.ingest_summary(again)[1][1]


def test_save_uploads_renames_clashing_names(tmp_path):
    saved = ui.save_uploads([("a/r.txt", b"one"), ("b/r.txt", b"two"), ("r.txt", b"three")], tmp_path, max_bytes=99)
    assert sorted(saved.paths.values()) == ["r (2).txt", "r (3).txt", "r.txt"]
    assert all(p.parent == tmp_path.resolve() for p in saved.paths)


# --- the page ------------------------------------------------------------------------------------------------------


def test_first_start_indexes_the_sample_and_shows_status():
    at = _app("Library")
    sidebar = _texts(at.sidebar.markdown) + _texts(at.sidebar.info)
    assert "Extractive mode: no LLM is configured" in _unescape_md(sidebar)
    assert "sentences quoted from the reports" in _unescape_md(sidebar)
    assert "1 report," in sidebar
    table = at.dataframe[0].value
    assert list(table["Source"]) == [SAMPLE] and int(table["Chunks"][0]) > 0
    assert {"Title", "Date", "Source", "Chunks"} <= set(table.columns)


def test_ask_shows_answer_citation_and_highlighted_span():
    at = _app()
    _ask(at, "Who co-chaired the meeting in Moscow?")
    answer = _unescape_md(_texts(at.chat_message[1].markdown))
    assert "Sanjeev Kumar" in answer and "[1]" in answer
    labels = [e.label for e in at.expander]
    assert any(_unescape_md(label).startswith("[1] ") and SAMPLE in _unescape_md(label) for label in labels)
    blocks = _html_blocks(at)
    assert blocks and all("<mark" in b for b in blocks)
    marked = [html.unescape(m) for b in blocks for m in re.findall(r"<mark[^>]*>(.*?)</mark>", b)]
    assert any("Sanjeev Kumar" in m for m in marked)
    for b in blocks:
        _assert_safe_html(b)

    # A follow-up goes with the conversation: "he" is resolved from the earlier turn before retrieval.
    _ask(at, "Which plant did he visit?")
    assert len(at.chat_message) == 4
    understood = _unescape_md(_texts(at.chat_message[3].caption))
    assert "Understood as:" in understood and " he " not in understood.split("Understood as:")[1]


def test_ask_abstains_with_closest_passages():
    at = _app()
    _ask(at, "What was the defence budget of Brazil in 1987?")
    warning = _unescape_md(_texts(at.chat_message[1].warning))
    assert "The reports do not say" in warning
    assert "Closest passages" in _texts(at.chat_message[1].markdown)
    assert any(_unescape_md(e.label).startswith("Passage 1:") for e in at.expander)


def test_filters_restrict_the_question_to_chosen_reports():
    at = _app()
    at.sidebar.multiselect(key="flt_sources").set_value([SAMPLE]).run()
    _no_exception(at)
    assert SAMPLE in _unescape_md(_texts(at.sidebar.caption))


def test_brief_paragraph_summary_and_downloads():
    at = _app("Brief")
    at.number_input(key="brief_words").set_value(60)
    at.button(key="brief_go").click().run()
    _no_exception(at)
    text = _unescape_md(_texts(at.markdown))
    assert "Structured summary" in text and "People" in text
    assert "Sanjeev Kumar" in text
    assert ":blue-badge[1]" in text  # the paragraph cites
    downloads = at.get("download_button")
    assert len(downloads) == 2
    assert {d.proto.label for d in downloads} == {"Download Markdown", "Download JSON"}


def test_library_upload_good_and_bad_then_forget():
    at = _app("Library")
    good = "Quarterly port report\n\nThe port of Valmora handled 1.2 million containers in 2024, a record.\n"
    at.file_uploader[0].set_value([("valmora.txt", good.encode(), "text/plain"),
                                   ("broken.pdf", b"%PDF-1.4 not a pdf", "application/pdf")])
    at.run()
    at.button(key="ingest_go").click().run()
    _no_exception(at)
    assert "valmora.txt" in _unescape_md(_texts(at.success))
    assert "broken.pdf" in _unescape_md(_texts(at.error))
    assert set(at.dataframe[0].value["Source"]) == {SAMPLE, "valmora.txt"}
    assert "2 reports," in _texts(at.sidebar.markdown)

    at.selectbox(key="forget_source").set_value("valmora.txt").run()
    at.button(key="forget_go").click().run()
    _no_exception(at)
    assert "Forgot valmora.txt" in _unescape_md(_texts(at.success))
    assert list(at.dataframe[0].value["Source"]) == [SAMPLE]
    assert "1 report," in _texts(at.sidebar.markdown)

    at.selectbox(key="forget_source").set_value(SAMPLE).run()
    at.button(key="forget_go").click().run()
    _no_exception(at)
    assert "No reports yet" in _texts(at.info)


def test_reindex_keeps_the_library():
    at = _app("Library")
    at.button(key="reindex_go").click().run()
    _no_exception(at)
    assert "Re-indexed 1 report(s)" in _unescape_md(_texts(at.success))


def test_uploaded_report_text_is_never_rendered_as_html():
    at = _app("Library")
    at.file_uploader[0].set_value([("evil.txt", EVIL.encode(), "text/plain")])
    at.run()
    at.button(key="ingest_go").click().run()
    _no_exception(at)
    assert "evil.txt" in _unescape_md(_texts(at.success))
    table = at.dataframe[0].value
    assert "evil.txt" in set(table["Source"])

    at.session_state["page"] = "Ask"
    at.run()
    _ask(at, "What revenue did Zorblax Mining report?")
    blocks = _html_blocks(at)
    assert blocks, "the citation viewer should render the evil report"
    for b in blocks:
        _assert_safe_html(b)
    joined = "".join(blocks)
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in joined or "&lt;script&gt;" in joined
    for m in at.markdown:  # everything else is escaped Markdown: no live tags, links or directives
        if not m.proto.allow_html:
            assert not re.search(r"(?<!\\)<(script|img)", m.value), m.value
            assert "](javascript" not in m.value


def test_evaluate_page_renders_a_scored_run(tmp_path):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["page"] = "Evaluate"
    at.session_state["eval_result"] = {
        "run": {"id": "r1", "created": "2026-01-01T00:00:00", "dataset": "fast"},
        "metrics": {"f1": {"value": 0.61, "ci": [0.5, 0.7], "n": 20},
                    "hits_at_5_doc": {"value": 0.9, "ci": [0.8, 1.0], "n": 20}},
        "baselines": {"bm25": {"f1": {"value": 0.5, "ci": None, "n": 20}}},
        "anchors": {"rouge1": {"value": 0.41, "expected": 0.42, "source": "paper"}},
        "by_k": {"recall_chunk": {"1": 0.4, "5": 0.8}},
        "by_type": {"factoid": {"f1": {"value": 0.7}}, "list": {"f1": {"value": 0.5}}},
        "latency": [0.2, 0.3, 0.5],
        "questions": [{"id": "q1", "question": "Who?", "type": "factoid", "gold": ["A"], "answer": "A",
                       "verdict": "correct", "values": {"f1": 1.0}}],
    }
    at.run()
    _no_exception(at)
    if any("not installed" in w.value for w in at.warning):
        pytest.skip("rag.evaluation.cli is not installed")
    metrics = {m.label: m for m in at.metric}
    assert metrics["f1"].value == "0.610" and "+0.110" in metrics["f1"].delta
    assert len(at.dataframe) == 3  # baselines, anchors, questions
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
