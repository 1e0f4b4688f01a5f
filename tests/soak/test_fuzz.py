"""Property tests (hypothesis) for text utilities, loaders and the chunker.

The default run is short (``max_examples`` about 200 per property). For a longer
fuzz, raise it to 5000 with the environment variable RAG_SLOW=1:

    RAG_SLOW=1 .venv/bin/python -m pytest tests/soak/test_fuzz.py -q

A failing example is printed by hypothesis and replayed first on the next run
(from ``.hypothesis/``); add it as an ``@example`` when you fix the bug.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.errors import IngestError
from rag.ingest.chunking import Chunker
from rag.ingest.loading import content_id, load_file, load_text
from rag.nlp import dates
from rag.nlp.text import fold, normalize, split_sentences
from tests.badfiles import BODY, make_docx, make_pdf
from tests.integration.test_chunking import minilm_count_tokens

EXAMPLES = 5000 if os.environ.get("RAG_SLOW") == "1" else 200
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that stress the text code: whitespace of every kind, zero-width and control
# characters, combining marks, typographic quotes and dashes, stops, CJK and emoji.
_TRICKY = list(
    " \t\n\r\x0b\x0c\u00a0\u2028\u2029\u200b\u00ad\ufeff\x00\x07\u0301\u0308"
    "\u201c\u201d\u2019\u2014\u2026.!?\"'()-*\u2022\u00e9\u0130\u00df\u65e5\U0001f600"
)
WORDS = ["Mr.", "Dr.", "U.S.", "D.K.", "report", "Moscow", "the", "India-Russia", "2024", "e.g.", "no."]
text_st = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(st.sampled_from(_TRICKY), st.sampled_from(WORDS), st.characters()), max_size=200).map(
        "".join
    ),
)


@fuzz
@given(text_st)
def test_fold_keeps_length(text):
    assert len(fold(text)) == len(text)
    assert fold(fold(text)) == fold(text)


@fuzz
@given(text_st)
def test_normalize_output_is_tidy(text):
    out = normalize(text)
    assert out == out.strip()
    assert "\r" not in out and "\n\n\n" not in out and "  " not in out
    assert " \n" not in out and "\n " not in out
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]", out)


def test_normalize_is_idempotent_across_removed_zero_width_chars():
    text = "e\u200b\u0301"  # NFC cannot compose across the zero-width space, which is then removed
    assert normalize(normalize(text)) == normalize(text)


@fuzz
@given(text_st, st.integers(min_value=0, max_value=1000))
@example("Mr. Smith met D.K. Sunil. He said: \u201cYes.\u201d Then\u2026 left!", 0)
def test_split_sentences_spans_cover_the_text_in_order(text, offset):
    sentences = split_sentences(text, offset)
    covered = bytearray(len(text))
    last_end = 0
    for s in sentences:
        a, b = s.start - offset, s.end - offset
        assert last_end <= a < b <= len(text)
        assert text[a:b] == s.text and s.text == s.text.strip()
        covered[a:b] = b"\x01" * (b - a)
        last_end = b
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))


@fuzz
@given(text_st)
def test_find_dates_spans_are_exact(text):
    last = 0
    for start, end, value, surface in dates.find_dates(text):
        assert last <= start < end and text[start:end] == surface
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{4}-\d{2}|--\d{2}-\d{2}", value)
        last = end
    iso, note = dates.publication_date(text)
    assert (iso is None) == note.startswith(dates.NO_DATE)


# --- loaders on hostile bytes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    """Valid files of each format, to be mutated (random bytes alone rarely get past the header)."""
    folder = Path(tempfile.mkdtemp(prefix="dossier-fuzz-"))
    pdf = make_pdf(folder / "s.pdf", ["Fuzz seed.", BODY], title="Seed").read_bytes()
    docx = make_docx(folder / "s.docx", heading="Seed", paragraphs=[BODY], table=[["a", "b"]]).read_bytes()
    html = f"<html><head><title>T</title></head><body><p>{BODY}</p></body></html>".encode()
    return {
        ".pdf": pdf,
        ".docx": docx,
        ".html": html,
        ".md": f"# T\n\n{BODY}".encode(),
        ".txt": BODY.encode(),
    }


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: float | None) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    if cut is not None:
        buf = buf[: int(len(buf) * cut)]
    return bytes(buf)


def _load_bytes(data: bytes, suffix: str) -> None:
    """Load ``data`` as a file with ``suffix``: a Document with sane fields, or IngestError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            doc = load_file(path, path.name, max_bytes=10 * 1024 * 1024)
        except IngestError as e:
            assert e.reason and e.path == str(path)
            return
    assert doc.text and doc.text == doc.text.strip()
    assert doc.doc_id == content_id(doc.text) and len(doc.title) <= 200
    assert doc.date is None or dates.is_full(doc.date)


SUFFIXES = [".txt", ".md", ".html", ".pdf", ".docx"]


@fuzz
@given(st.binary(max_size=3000), st.sampled_from(SUFFIXES))
def test_loaders_on_random_bytes_raise_only_ingest_error(data, suffix):
    _load_bytes(data, suffix)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(SUFFIXES),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=8),
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)),
)
def test_loaders_on_mutated_files_raise_only_ingest_error(seeds, suffix, edits, cut):
    _load_bytes(_mutate(seeds[suffix], edits, cut), suffix)


def test_mutated_zip_member_is_reported(seeds, tmp_path):
    """A docx whose document.xml is not XML: python-docx's error becomes a reason."""
    path = tmp_path / "broken.docx"
    with zipfile.ZipFile(io.BytesIO(seeds[".docx"])) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b"<not xml" if item.filename == "word/document.xml" else src.read(item))
    with pytest.raises(IngestError, match="corrupt Word document"):
        load_file(path, path.name, max_bytes=10 * 1024 * 1024)


@fuzz
@given(text_st, st.sampled_from(["txt", "md", "html"]))
def test_load_text_never_raises_anything_else(text, fmt):
    try:
        doc = load_text(text, source="fuzz", fmt=fmt)
    except IngestError:
        return
    assert doc.text == doc.text.strip() and doc.doc_id == content_id(doc.text)


# --- the chunker ---------------------------------------------------------------------------------


def _check_chunks(text: str, count: Callable[[str], int], chunker: Chunker, cap: int) -> None:
    try:
        doc = load_text(text, source="fuzz.txt")
    except IngestError:
        return
    chunks = chunker.split(doc)
    assert chunks
    for c in chunks:
        assert c.text == doc.text[c.start : c.end] and c.text
        assert count(c.text) <= cap


@fuzz
@given(st.lists(st.one_of(text_st, st.sampled_from(WORDS)), min_size=1, max_size=30).map(" ".join))
def test_chunker_spans_valid_and_capped_with_minilm(text):
    count = minilm_count_tokens()
    _check_chunks(text, count, Chunker(count, chunk_tokens=24, overlap=6, max_tokens=32), 32)


@fuzz
@given(text_st, st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=20))
def test_chunker_spans_valid_and_capped_with_characters(text, size, overlap):
    _check_chunks(text, len, Chunker(len, chunk_tokens=size, overlap=overlap, max_tokens=size), size)
