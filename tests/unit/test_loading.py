"""Loading: every format from real files, title and date detection, discovery, the bad-input corpus."""

from __future__ import annotations

import codecs
import datetime as dt
import os
import time
from pathlib import Path

import pytest

from rag.errors import IngestError
from rag.ingest.loading import MB, NO_TEXT_LAYER, content_id, discover, load_file, load_paths, load_text
from rag.nlp import dates
from rag.nlp.text import normalize
from tests.badfiles import BODY, make_bad_corpus, make_docx, make_encrypted_pdf, make_image_pdf, make_pdf

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "india-russia-working-group-moscow.txt"
LIMIT = 25 * MB


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def load(path: Path) -> object:
    return load_file(path, path.name, max_bytes=LIMIT)


def reason_of(path: Path, **kw: object) -> str:
    with pytest.raises(IngestError) as info:
        load_file(path, path.name, max_bytes=int(kw.get("max_bytes", LIMIT)))  # type: ignore[arg-type]
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    return info.value.reason


# --- the sample and plain text ---------------------------------------------------------------


def test_sample_report_has_title_no_date_and_a_content_id():
    doc = load_file(SAMPLE, SAMPLE.name, max_bytes=LIMIT)
    assert doc.source == SAMPLE.name and doc.format == "txt"
    assert doc.title.startswith("The 23rd meeting session of the Working Group")
    assert doc.date is None and doc.date_note == dates.NO_DATE
    assert doc.text == normalize(SAMPLE.read_text(encoding="utf-8"))
    assert doc.doc_id == content_id(doc.text) and len(doc.doc_id) == 16


@pytest.mark.parametrize(
    "top, iso, note",
    [
        ("MOSCOW, Nov 25, 2024 (Reuters) - Russia said", "2024-11-25", "dateline"),
        ("NEW DELHI, 3 March 2024: The ministry said", "2024-03-03", "dateline"),
        ("Talks resume\nPublished: 12 March 2024\nUpdated: 14 March 2024", "2024-03-12", "dateline"),
        ("Talks resume\nLast updated: March 14, 2024", "2024-03-14", "dateline"),
        ("Talks resume\nBy A. Writer, March 12, 2024\n\nBody.", "2024-03-12", "date near the top"),
        ("Talks resume\nReported on 2024-03-12.", "2024-03-12", "date near the top"),
        ("Talks resume on 12/03/2024 in Delhi.", None, dates.NO_DATE),
        ("MOSCOW, Nov 25 (Reuters) - Russia said", None, "has no year"),
        ("Talks resume in March 2024.", None, dates.NO_DATE),
    ],
)
def test_publication_date_forms(tmp_path, top, iso, note):
    doc = load(write(tmp_path / "r.txt", f"{top}\n\n{BODY}"))
    assert doc.date == iso
    assert note in doc.date_note


def test_date_far_below_the_top_is_not_a_publication_date():
    doc = load_text("Title\n\n" + BODY * 5 + " It was signed on 12 March 2024.", source="r.txt")
    assert doc.date is None and doc.date_note == dates.NO_DATE


def test_find_dates_lists_every_form_with_exact_spans():
    text = (
        "Met on 12 March 2024, again on March 14, 2024 (2024-03-15), in April 2024, "
        "then Nov 25 and 5th of May, 2023; not 12/03/2024, not may 5, not February 30, 2024."
    )
    found = dates.find_dates(text)
    assert [v for _s, _e, v, _t in found] == [
        "2024-03-12",
        "2024-03-14",
        "2024-03-15",
        "2024-04",
        "--11-25",
        "2023-05-05",
    ]
    assert all(text[s:e] == surface for s, e, _v, surface in found)


def test_title_skips_a_date_only_first_line_and_is_trimmed():
    assert load_text("12 March 2024\nReal title\n\nBody.", source="a").title == "Real title"
    long = load_text("word " * 100, source="b").title
    assert len(long) <= 200 and long.endswith("\u2026")


def test_load_text_detects_or_takes_title_and_date():
    doc = load_text("# Heading\n\nPublished: 1 May 2024\n\nText.", source="e.md", fmt="md")
    assert (doc.title, doc.date, doc.format) == ("Heading", "2024-05-01", "md")
    given = load_text("Some text.", source="e.txt", title="Given", date="2020-01-02")
    assert (given.title, given.date, given.date_note) == ("Given", "2020-01-02", "given")
    with pytest.raises(IngestError, match="empty"):
        load_text(" \n ", source="e.txt")


# --- text decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        codecs.BOM_UTF8 + "Caf\u00e9 report.".encode(),
        "\ufeffCaf\u00e9 report.".encode("utf-16-le"),
        "\ufeffCaf\u00e9 report.".encode("utf-16-be"),
        "Caf\u00e9 report.".encode("utf-16-le"),  # no BOM
        "Caf\u00e9 report.".encode("cp1252"),
        "Caf\u00e9 report.".encode("latin-1"),
    ],
)
def test_text_encodings(tmp_path, data):
    assert load(write(tmp_path / "r.txt", data)).text == "Caf\u00e9 report."


def test_mixed_encodings_keep_both_halves(tmp_path):
    data = "r\u00e9sum\u00e9 \u2014 ".encode() + "na\u00efve \u201cquote\u201d".encode("cp1252")
    assert (
        load(write(tmp_path / "r.txt", data)).text == "r\u00e9sum\u00e9 \u2014 na\u00efve \u201cquote\u201d"
    )


def test_binary_and_non_text_are_rejected(tmp_path):
    assert "binary" in reason_of(write(tmp_path / "a.txt", b"text\x00\x01\x02" * 100))
    assert "binary" in reason_of(write(tmp_path / "b.txt", bytes(range(1, 32)) * 50))
    assert "UTF-8" in reason_of(write(tmp_path / "c.txt", bytes(range(0xA0, 0x100)) * 40))


def test_size_limit_is_checked_before_reading(tmp_path):
    path = tmp_path / "big.txt"
    with open(path, "wb") as f:
        f.truncate(3 * MB)
    reason = reason_of(path, max_bytes=2 * MB)
    assert "3.0 MB" in reason and "2 MB" in reason and "RAG_MAX_FILE_MB" in reason


# --- markdown and html -----------------------------------------------------------------------


def test_markdown_heading_title_and_marks_dropped(tmp_path):
    md = "---\ntitle: Front title\ndate: 2024-02-01\n---\n"
    md += "# Heading one\n\nPara *one*.\n\n## Sub ##\n\nPara two."
    doc = load(write(tmp_path / "r.md", md))
    assert (doc.title, doc.date, doc.format) == ("Front title", "2024-02-01", "md")
    assert doc.text == "Heading one\n\nPara *one*.\n\nSub\n\nPara two."
    setext = load(write(tmp_path / "s.md", "Setext title\n============\n\nBody text."))
    assert setext.title == "Setext title" and "===" not in setext.text


HTML = """<!doctype html><html><head><title>Page &amp; title</title>
<meta property="article:published_time" content="2024-03-12T09:30:00+05:30">
<style>p {color: red}</style><script>var x = "<p>no</p>";</script></head>
<body><nav><a href="/">Home</a> Menu</nav><!-- <div>Commented out</div> -->
<article><h1>Headline</h1><p>First   paragraph
continues here.</p><p>Second<br>line &eacute;t&eacute;.</p>
<ul><li>Item one</li><li>Item two</li></ul>
<table><tr><td>A</td><td>B</td></tr></table></article></body></html>"""


def test_html_text_title_blocks_and_meta_date(tmp_path):
    doc = load(write(tmp_path / "p.html", HTML))
    assert doc.title == "Page & title" and doc.format == "html"
    assert (doc.date, doc.date_note) == ("2024-03-12", "HTML meta article:published_time")
    assert doc.text == (
        "Headline\n\nFirst paragraph continues here.\n\nSecond\nline \u00e9t\u00e9."
        "\n\nItem one\n\nItem two\n\nA B"
    )
    for junk in ("Menu", "color", "var x", "no</p>", "Commented", "<!--"):
        assert junk not in doc.text


@pytest.mark.parametrize(
    "head, note",
    [
        ('<meta name="DC.date" content="2024-01-05">', "HTML meta dc.date"),
        ('<meta name="date" content="5 January 2024">', "HTML meta date"),
        ('<script type="application/ld+json">{"datePublished": "2024-01-05T10:00Z"}</script>', "JSON-LD"),
        ("", "HTML <time datetime>"),
    ],
)
def test_html_date_sources(tmp_path, head, note):
    body = '<p>Text.</p><p><time datetime="2024-01-05">Jan 5</time></p>'
    doc = load(write(tmp_path / "p.htm", f"<html><head>{head}</head><body>{body}</body></html>"))
    assert doc.date == "2024-01-05" and note in doc.date_note


def test_html_without_title_uses_h1_and_declared_charset(tmp_path):
    page = '<html><head><meta charset="iso-8859-1"></head>'
    page += "<body><h1>Caf\u00e9 news</h1><p>Text.</p></body></html>"
    doc = load(write(tmp_path / "p.html", page.encode("latin-1")))
    assert doc.title == "Caf\u00e9 news" and doc.date is None


def test_html_that_is_only_markup_is_empty(tmp_path):
    assert "empty" in reason_of(
        write(tmp_path / "p.html", "<html><script>x()</script><nav>menu</nav></html>")
    )


def test_hostile_markup_stays_fast():
    """Shapes that make html.parser or naive heading regexes quadratic (minutes before the guards)."""
    start = time.perf_counter()
    assert load_text("<a " * 20_000 + "text", source="p.html", fmt="html").text.endswith("text")
    assert load_text("# a" + " \t" * 20_000 + "x", source="h.md", fmt="md").title.endswith("x")
    assert time.perf_counter() - start < 5


def test_markdown_closing_hashes_need_a_space():
    assert load_text("# Learn C#\n\nBody.", source="c.md", fmt="md").title == "Learn C#"


# --- pdf -------------------------------------------------------------------------------------


def test_pdf_text_and_metadata_title(tmp_path):
    doc = load(
        make_pdf(
            tmp_path / "r.pdf",
            ["MOSCOW, March 3, 2024 (Reuters) - Talks went well.", BODY],
            title="PDF Title",
        )
    )
    assert doc.format == "pdf" and doc.title == "PDF Title"
    assert "Both sides agreed to expand cooperation" in doc.text
    assert (doc.date, doc.date_note) == ("2024-03-03", "dateline")


def test_pdf_without_metadata_title_uses_first_line(tmp_path):
    assert load(make_pdf(tmp_path / "r.pdf", ["First line title", BODY])).title == "First line title"


def test_encrypted_pdf_opens_with_empty_password_else_is_rejected(tmp_path):
    plain = make_pdf(tmp_path / "plain.pdf", ["Open report.", BODY])
    opened = load(make_encrypted_pdf(tmp_path / "open.pdf", plain, user_password=""))
    assert "Open report." in opened.text
    locked = make_encrypted_pdf(tmp_path / "locked.pdf", plain, user_password="secret")
    assert "password-protected" in reason_of(locked)


def test_image_only_and_broken_pdfs_are_rejected(tmp_path):
    assert reason_of(make_image_pdf(tmp_path / "scan.pdf")) == NO_TEXT_LAYER
    data = make_pdf(tmp_path / "ok.pdf", [BODY]).read_bytes()
    assert "corrupt or truncated" in reason_of(write(tmp_path / "cut.pdf", data[: len(data) // 3]))
    assert "not a PDF" in reason_of(write(tmp_path / "fake.pdf", b"hello, not a pdf"))


# --- docx ------------------------------------------------------------------------------------


def test_docx_paragraphs_tables_and_heading_title(tmp_path):
    path = make_docx(
        tmp_path / "r.docx",
        heading="Word heading",
        paragraphs=[BODY],
        table=[["Name", "Role"], ["Sunil", "CMD"]],
    )
    doc = load(path)
    assert doc.format == "docx" and doc.title == "Word heading"
    assert doc.text == f"Word heading\n\n{BODY}\n\nName | Role\nSunil | CMD"
    assert doc.date is None  # python-docx's template date is not a publication date


def test_docx_title_property_and_created_date_only_without_text_date(tmp_path):
    import docx

    def save(name: str, paras: list[str]) -> Path:
        path = make_docx(tmp_path / name, heading=None, paragraphs=paras, title="Props title")
        d = docx.Document(str(path))
        d.core_properties.created = dt.datetime(2023, 6, 1, 12, 0)
        d.save(str(path))
        return path

    undated = load(save("a.docx", ["No date here."]))
    assert undated.title == "Props title"
    assert undated.date == "2023-06-01" and "created" in undated.date_note
    dated = load(save("b.docx", ["Published: 2 February 2024", "Text."]))
    assert (dated.date, dated.date_note) == ("2024-02-02", "dateline")


# --- discovery -------------------------------------------------------------------------------


def test_discover_recurses_sorted_skips_hidden_and_unsupported(tmp_path):
    root = tmp_path / "reports"
    for name in (
        "b.txt",
        "a.md",
        "sub/c.html",
        "sub/deeper/d.pdf",
        ".hidden.txt",
        ".git/x.txt",
        "image.png",
        "notes.TXT",
    ):
        write(root / name, "x")
    found, rejected = discover([root])
    assert [s for _p, s in found] == ["a.md", "b.txt", "notes.TXT", "sub/c.html", "sub/deeper/d.pdf"]
    assert rejected == []
    found, rejected = discover([root / "image.png", root / "b.txt", root / "b.txt", tmp_path / "missing.txt"])
    assert [s for _p, s in found] == ["b.txt"]
    assert [(Path(r.path).name, r.reason.split(":")[0]) for r in rejected] == [
        ("image.png", "unsupported file type"),
        ("missing.txt", "not found"),
    ]


def test_discover_symlinks_loops_and_broken_links(tmp_path):
    outside = write(tmp_path / "outside" / "linked.txt", "x")
    root = tmp_path / "root"
    write(root / "a.txt", "x")
    (root / "file-link.txt").symlink_to(outside)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "broken.txt").symlink_to(tmp_path / "nowhere.txt")
    found, rejected = discover([root])
    assert [s for _p, s in found] == ["a.txt", "file-link.txt"]
    assert [(Path(r.path).name, r.reason) for r in rejected] == [
        ("broken.txt", "broken link: the file it points to does not exist")
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_is_rejected(tmp_path):
    path = write(tmp_path / "secret.txt", "x")
    path.chmod(0)
    try:
        found, rejected = discover([tmp_path])
        assert found == [] and "permission denied" in rejected[0].reason
    finally:
        path.chmod(0o600)


def test_discover_reports_permission_denied(tmp_path, monkeypatch):
    """The same check as above, for runs as root: os.access is what discovery consults."""
    write(tmp_path / "secret.txt", "x")
    monkeypatch.setattr("rag.ingest.loading.os.access", lambda p, mode: not str(p).endswith("secret.txt"))
    found, rejected = discover([tmp_path])
    assert found == [] and rejected[0].reason == "cannot read: permission denied"


# --- batches and the bad-input corpus ----------------------------------------------------------


def test_whole_bad_corpus_in_one_batch(tmp_path):
    expected = make_bad_corpus(tmp_path / "corpus")
    result = load_paths([tmp_path / "corpus"], max_bytes=LIMIT)
    loaded = {d.source: d for d in result.documents}
    rejected = {Path(r.path).name: r for r in result.rejected}
    assert set(loaded) | set(rejected) == set(expected)
    for name, reason in expected.items():
        if reason is None:
            assert name in loaded, f"{name} should load: {rejected.get(name)}"
            assert "handled" in loaded[name].text
            assert result.origins[name] == str(tmp_path / "corpus" / name)
        else:
            assert name in rejected, f"{name} should be rejected"
            assert reason in rejected[name].reason, (name, rejected[name].reason)
            assert rejected[name].path == str(tmp_path / "corpus" / name)


def test_one_bad_file_does_not_stop_the_batch(tmp_path, monkeypatch):
    write(tmp_path / "a.txt", "Good one.")
    write(tmp_path / "b.txt", "Crashes the reader.")
    write(tmp_path / "c.txt", "Good two.")
    from rag.ingest import readers

    def flaky(data: bytes) -> readers.ReadResult:
        if data.startswith(b"Crashes"):
            raise RuntimeError("reader bug")
        return readers.plain(data)

    monkeypatch.setitem(readers.READERS, "txt", flaky)
    result = load_paths([tmp_path], max_bytes=LIMIT)
    assert [d.source for d in result.documents] == ["a.txt", "c.txt"]
    assert "reader bug" in result.rejected[0].reason
