"""The page: AppTest drives app.py headlessly; the pure helpers in page.ui_helpers and
page.ui_scores are tested directly.

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

from page import ui_helpers as ui
from page import ui_scores as scores
from rag.types import Answer, Citation, SentenceCheck

REPO = Path(__file__).resolve().parents[2]
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
    sentences = [
        SentenceCheck("Alpha.", [1], True),
        SentenceCheck("Beta <b>42</b>.", [1], False, ['number "42" not in cited passages']),
    ]
    base = {"question": "q?", "answer": "Alpha. Beta <b>42</b>.", "abstained": False, "mode": "extractive"}
    base.update(citations=[c], sentences=sentences)
    base.update(kw)
    return Answer(**base)


def test_answer_markdown_markers_and_flags():
    a = _answer()
    out = ui.answer_markdown(a)
    assert "Alpha\\. :blue-badge[1]" in out
    assert "\\<b\\>42\\<\\/b\\>" in out and ui.UNSUPPORTED_FLAG in out
    assert ui.unsupported_sentences(a.sentences) == [
        (2, "Beta <b>42</b>.", ['number "42" not in cited passages'])
    ]
    tail = SentenceCheck("The reports do not say when.", [], False)
    assert ui.unsupported_sentences([tail]) == []  # the uncited "do not say" tail is not a failure
    assert (
        ui.answer_markdown(_answer(abstained=True, answer="The reports do not say X."))
        == "The reports do not say X\\."
    )


def test_citation_label_and_history():
    c = _answer().citations[0]
    assert _unescape_md(ui.citation_label(c)) == "[1] R \u2014 r.txt \u00b7 undated"
    msgs = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "answer": object()},
        {"role": "assistant", "content": "", "error": "boom"},
    ]
    assert ui.history_for(msgs) == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


SCORED = {
    "run": {"suite": "fast", "started": "2026-01-01T00:00:00", "commit": "abc1234"},
    "metrics": {
        "gold/f1": {"value": 0.61, "ci": [0.5, 0.7], "n": 20},
        "gold/hits_at_5_doc": {"value": 0.9, "ci": [0.8, 1.0], "n": 20},
        "gold/mrr_at_1_doc": {"value": 0.8, "ci": [0.7, 0.9], "n": 20},
        "gold/latency_ask": {"value": 0.2, "ci": None, "n": 20},
        "cnndm/rouge1": {"value": 0.44, "ci": [0.4, 0.48], "n": 40},
    },
    "baselines": {
        "bm25": {"gold/f1": {"value": 0.5, "ci": None, "n": 20}},
        "lead3": {"cnndm/rouge1": {"value": 0.43}},
        "gpt3": {"cnndm/rouge1": {"value": 0.41}},
    },
    "anchors": {"cnndm/rouge1 vs Lead-3 R-1 (paper)": {"value": 0.44, "expected": 0.4554, "source": "paper"}},
    "by_k": {
        "gold recall (chunk)": {"1": 0.4, "5": 0.8},
        "gold hits (doc)": {"1": 0.9, "5": 1.0},
        "multihop-test recall (chunk)": {"1": 0.2},
    },
    "by_type": {
        "gold:who": {"f1": {"value": 0.7}, "bogus": {"value": 1}},
        "gold:where": {"f1": {"value": 0.5}},
        "cnndm:brief": {"rouge1": {"value": 0.44}},
    },
    "latency": [0.1, 0.2, 0.2, 1.5],
    "questions": [
        {
            "id": "q1",
            "part": "gold",
            "question": "Who?",
            "type": "who",
            "gold": "A",
            "answer": "A",
            "verdict": "answer contains gold",
            "values": {"f1": 1.0, "hits_at_1_chunk": 1.0},
        },
        {"id": "c1", "part": "cnndm", "question": "", "type": "brief", "values": {"rouge1": 0.4}},
    ],
}


def test_eval_helpers_shape_charts_and_tables():
    assert scores.eval_parts(SCORED) == ["gold", "cnndm"]
    head = scores.metric_rows(SCORED, "gold", headline=True)
    assert [r["name"] for r in head] == ["f1", "hits_at_5_doc", "latency_ask"]  # in HEADLINE order
    assert head[0]["delta"] == pytest.approx(0.11) and head[0]["baseline"] == "bm25"
    assert len(scores.metric_rows(SCORED, "gold", headline=False)) == 4
    rouge = scores.metric_rows(SCORED, "cnndm", headline=True)[0]
    assert rouge["baselines"] == {"lead3": 0.43, "gpt3": 0.41} and "anchor 0.455 (paper)" in rouge["help"]
    assert scores.metric_table([rouge])[0]["baseline gpt3"] == 0.41
    assert (
        scores.anchor_rows(SCORED, "gold") == []
        and scores.anchor_rows(SCORED, "cnndm")[0]["expected"] == 0.4554
    )
    assert scores.by_k_columns(SCORED["by_k"], "gold") == {
        "k": [1, 5],
        "recall (chunk)": [0.4, 0.8],
        "hits (doc)": [0.9, 1.0],
    }
    assert scores.by_type_columns(SCORED["by_type"], "gold", metrics=scores.HEADLINE) == {
        "type": ["who", "where"],
        "f1": [0.7, 0.5],
    }
    assert sum(scores.latency_columns(SCORED["latency"])["questions"]) == 4
    assert scores.percentile(SCORED["latency"], 50) == 0.2
    rows = scores.question_rows(SCORED["questions"], "gold")
    assert len(rows) == 1 and rows[0]["f1"] == 1.0 and "hits_at_1_chunk" not in rows[0]


def test_summary_sections_escape_report_text():
    cite = [{"source": "a.txt", "start": 0, "end": 3, "quote": "<b>x</b>"}]
    summary = {
        "people": [{"name": "<script>X</script>", "title": "Chief", "affiliation": None, "citations": cite}],
        "places": [],
        "timeline": [{"date": "2024-01-02", "date_text": "2 Jan", "event": "met", "citations": cite}],
        "sources": [{"source": "a.txt"}],
    }
    summary["unfilled"] = [{"field": "figures", "reason": "no figures written in digits"}]
    sections = dict(ui.summary_sections(summary, quotes=True))
    assert list(sections) == ["People", "Organisations", "Places", "Timeline", "Figures", "Open questions"]
    assert sections["Figures"] == "*None found: no figures written in digits*"
    assert sections["Places"] == "*None found.*"
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
        (
            "page.html",
            f"<html><head><title>Page</title></head><body><p>{body.replace('Valmora', 'Brin')}</p>"
            "<script>alert(1)</script></body></html>".encode(),
        ),
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
    assert (
        not (tmp_path / "escape").exists() and list(folder.iterdir()) == []
    )  # nothing escaped, nothing left
    assert {s.source for s in pipe.sources()} == added
    lines = ui.ingest_summary(report)
    assert [lvl for lvl, _ in lines].count("error") == 3 and lines[0][0] == "success"

    again = ui.ingest_uploads(pipe, [("valmora.txt", body.encode()), ("copy.txt", body.encode())], folder)
    assert [e["path"] for e in again.unchanged] == ["valmora.txt", "copy.txt"]
    assert "same text as valmora.txt" in ui.ingest_summary(again)[1][1]


def test_save_uploads_renames_clashing_names(tmp_path):
    saved = ui.save_uploads(
        [("a/r.txt", b"one"), ("b/r.txt", b"two"), ("r.txt", b"three")], tmp_path, max_bytes=99
    )
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


def _upload(at: AppTest, *files: tuple[str, str]) -> AppTest:
    at.file_uploader[0].set_value([(name, text.encode(), "text/plain") for name, text in files])
    at.run()
    at.button(key="ingest_go").click().run()
    _no_exception(at)
    return at


DATED = (
    "Port report\n\nPublished 12 May 2024.\n\nThe port of Valmora handled 1.2 million containers in 2024.\n"
)


def test_filters_by_report_and_date_range_reach_the_question():
    import datetime as dt

    at = _upload(_app("Library"), ("dated.txt", DATED))
    at.session_state["page"] = "Ask"
    at.run()
    at.sidebar.multiselect(key="flt_sources").set_value(["dated.txt"]).run()
    assert "reports dated.txt" in _unescape_md(_texts(at.sidebar.caption))
    _ask(at, "Who co-chaired the meeting in Moscow?")
    assert "The reports do not say" in _unescape_md(_texts(at.chat_message[1].warning))

    at.sidebar.multiselect(key="flt_sources").set_value([])
    at.sidebar.toggle(key="flt_use_dates").set_value(True).run()
    at.sidebar.date_input(key="flt_dates").set_value((dt.date(2024, 5, 1), dt.date(2024, 5, 31))).run()
    assert "dated 2024-05-01 to 2024-05-31" in _unescape_md(_texts(at.sidebar.caption))
    _ask(at, "Who co-chaired the meeting in Moscow?")  # the undated sample report is out of range
    assert "The reports do not say" in _unescape_md(_texts(at.chat_message[3].warning))
    _ask(at, "How many containers did the port of Valmora handle?")
    assert "1.2 million" in _unescape_md(_texts(at.chat_message[5].markdown))


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
    at.file_uploader[0].set_value(
        [
            ("valmora.txt", good.encode(), "text/plain"),
            ("broken.pdf", b"%PDF-1.4 not a pdf", "application/pdf"),
        ]
    )
    at.run()
    assert at.file_uploader[0].proto.max_upload_size_mb == 25  # RAG_MAX_FILE_MB, enforced by the widget too
    assert set(at.file_uploader[0].allowed_type) >= {".txt", ".md", ".html", ".htm", ".pdf", ".docx"}
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


def test_oversized_upload_is_refused_with_a_message(monkeypatch):
    monkeypatch.setenv("RAG_MAX_FILE_MB", "0.01")
    at = _upload(_app("Library"), ("big.txt", "All work and no play. " * 1000), ("small.txt", DATED))
    errors = _unescape_md(_texts(at.error))
    assert "big.txt: too large (21.5 KB); the limit is 10.2 KB (RAG_MAX_FILE_MB)" in errors
    assert "small.txt" in _unescape_md(_texts(at.success))
    assert set(at.dataframe[0].value["Source"]) == {SAMPLE, "small.txt"}


def test_reindex_keeps_the_library():
    at = _app("Library")
    at.button(key="reindex_go").click().run()
    _no_exception(at)
    assert "Re-indexed 1 report(s)" in _unescape_md(_texts(at.success))


def test_uploaded_report_text_is_never_rendered_as_html():
    at = _upload(_app("Library"), ("evil.txt", EVIL))
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


def test_evaluate_page_renders_a_scored_run():
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["page"] = "Evaluate"
    at.session_state["eval_result"] = SCORED
    at.run()
    _no_exception(at)
    if any("not installed" in w.value for w in at.warning):
        pytest.skip("rag.evaluation.cli is not installed")
    metrics = {m.label: m for m in at.metric}
    assert set(metrics) == {"f1", "hits_at_5_doc", "latency_ask"}
    assert metrics["f1"].value == "0.610" and "+0.110 vs bm25" in metrics["f1"].delta
    assert len(at.dataframe) == 2  # every metric; questions (no anchors for this part)
    assert len(at.get("vega_lite_chart")) == 3  # by k, by type, latency
    at.selectbox(key="eval_part").set_value("cnndm").run()
    _no_exception(at)
    assert [m.label for m in at.metric] == ["rouge1"]
    assert len(at.dataframe) == 3  # anchors, every metric, questions


def test_llm_mode_streams_a_checked_answer_and_flags_unsupported_sentences(monkeypatch, fake_openai):
    """LLM mode against the local fake OpenAI server: status names the model and host; claims are checked."""
    quote = "Sanjeev Kumar, Secretary of Defence Production"

    def responder(request: dict) -> dict:
        prompt = "\n".join(str(m.get("content")) for m in request["messages"])  # re-asks repeat the prompt
        keys = re.findall(r'<passage key="(S\d+)"[^>]*>\n(.*?)\n</passage>', prompt, flags=re.DOTALL)
        key = next(k for k, text in keys if quote in text)
        cite = [{"key": key, "quote": quote}]
        return {
            "sentences": [
                {"text": "Sanjeev Kumar co-chaired the meeting in Moscow.", "citations": cite},
                {"text": "He brought 42 officials to Moscow.", "citations": cite},
            ],
            "abstained": False,
        }

    fake_openai.responder = responder
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    at = _app()
    status = _unescape_md(_texts(at.sidebar.success) + _texts(at.sidebar.markdown))
    assert "LLM mode: gpt-4o-mini" in status and "127.0.0.1" in status
    _ask(at, "Who co-chaired the meeting in Moscow?")
    answer = at.chat_message[1]
    text = _unescape_md(_texts(answer.markdown))
    assert "Sanjeev Kumar co-chaired the meeting in Moscow. :blue-badge[1]" in text
    assert "He brought 42 officials to Moscow. :blue-badge[1]" + ui.UNSUPPORTED_FLAG in text
    assert "42" in _unescape_md(_texts(answer.warning))  # the unsupported sentence, with its problem
    assert any(r.json.get("stream") for r in fake_openai.chat_requests())  # the answer was streamed
    marked = [html.unescape(m) for b in _html_blocks(at) for m in re.findall(r"<mark[^>]*>(.*?)</mark>", b)]
    assert quote in marked
