"""The bad-input corpus (tests/badfiles.py) through the real CLI and the upload path, and
pathological texts through the loader and chunker under a time limit.

Each bad file is handled or rejected with its own reason; the batch goes on; the store holds
exactly the chunks and records it held before plus those of the good files (compared as the
full set of chunk ids with their texts). Rejected files alone change nothing, not even the
store generation.

The corpus's ``long-line.txt`` is 2 MB of one line (about 2,600 chunks: minutes of embedding on
two cores); the default run cuts it to 16 KB, still one line with no break. RAG_SLOW=1 keeps it
whole and runs the pathological texts at 1 MB::

    RAG_SLOW=1 .venv/bin/python -m pytest tests/integration/test_badinput_batch.py -q

test_fuzz.py (the loader author's) already proves "no crash" and "spans valid" on random and
mutated input; what it leaves open is "no hang" (its examples have no deadline), covered here.
"""

from __future__ import annotations

import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from page import ui_helpers as ui
from rag.config import Settings
from rag.errors import IngestError
from rag.ingest.chunking import Chunker
from rag.ingest.loading import load_file, load_text
from rag.pipeline import build_pipeline
from tests.badfiles import make_bad_corpus
from tests.conftest import SAMPLE
from tests.helpers_proc import cli_env, open_store_copy, run_cli, store_state

SLOW = os.environ.get("RAG_SLOW") == "1"


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, dict[str, str | None]]:
    folder = tmp_path / "corpus"
    expected = make_bad_corpus(folder)
    if not SLOW:
        long_line = folder / "long-line.txt"
        long_line.write_bytes(long_line.read_bytes()[: 16 * 1024])
    return folder, expected


def _snapshot(store: Path, dest: Path, embedder) -> tuple[set[tuple[str, str]], dict, int]:
    """(chunk ids with texts, committed records, generation) as a fresh process sees the store."""
    state = store_state(open_store_copy(store, dest, embedder).store)
    return state.ids_and_texts(), state.committed, state.generation


def test_bad_corpus_through_the_cli(corpus, tmp_path, embedder):
    folder, expected = corpus
    store = tmp_path / "store"
    env = cli_env(store)
    build_pipeline(Settings(store=store), embedder=embedder).ingest(
        [SAMPLE]
    )  # this process never writes again
    chunks_before, records_before, _ = _snapshot(store, tmp_path / "before", embedder)

    proc = run_cli("ingest", str(folder), "--json", env=env)
    assert proc.returncode == 1, proc.stderr  # 1: some files were rejected, the rest were stored
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    rejected = {Path(r["path"]).name: r["reason"] for r in data["rejected"]}
    added = {a["source"] for a in data["added"]}
    good = {name for name, reason in expected.items() if reason is None}
    assert added == good and not data["updated"] and not data["unchanged"]
    assert set(rejected) == set(expected) - good
    for name, reason in rejected.items():
        assert expected[name] in reason, (name, reason)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("rejected: ")]
    assert sorted(lines) == sorted(f"rejected: {folder / n}: {r}" for n, r in rejected.items())

    state = store_state(open_store_copy(store, tmp_path / "after", embedder).store)
    chunks_after, records_after = state.ids_and_texts(), state.committed
    assert chunks_before <= chunks_after
    new_sources = {c[1] for c in state.chunks if (c[0], c[4]) not in chunks_before}
    assert new_sources == good  # only the good files added chunks
    assert {s: records_after[s] for s in records_before} == records_before
    assert set(records_after) == set(records_before) | good
    for name in rejected:
        assert name not in records_after and all(c[1] != name for c in state.chunks)

    # The rejected files alone, named one by one: the store does not change at all.
    again = run_cli(
        "ingest", *(str(folder / n) for n in sorted(rejected)), str(folder / "missing.txt"), "--json", env=env
    )
    assert again.returncode == 1
    data = json.loads(again.stdout)
    assert not data["added"] and len(data["rejected"]) == len(rejected) + 1
    assert _snapshot(store, tmp_path / "again", embedder) == (chunks_after, records_after, state.generation)


def test_bad_corpus_as_uploads(corpus, tmp_path, embedder):
    """The page's path: every corpus file uploaded at once, by name and bytes."""
    folder, expected = corpus
    pipe = build_pipeline(Settings(store=tmp_path / "store"), embedder=embedder)
    pipe.ingest([SAMPLE])
    before = store_state(pipe.store)
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    report = ui.ingest_uploads(pipe, files, tmp_path / "uploads")
    good = {name for name, reason in expected.items() if reason is None}
    assert {a["path"] for a in report.added} == good
    rejected = {r["path"]: r["reason"] for r in report.rejected}
    assert set(rejected) == set(expected) - good
    for name, reason in rejected.items():
        assert expected[name] in reason, (name, reason)
    after = store_state(pipe.store)
    assert before.ids_and_texts() <= after.ids_and_texts()
    assert {c[1] for c in after.chunks} - {c[1] for c in before.chunks} == good
    assert list((tmp_path / "uploads").iterdir()) == []  # written uploads are removed


# --- no hang on pathological text ------------------------------------------------------------------


@contextmanager
def time_limit(seconds: float, what: str):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""

    def expired(signum, frame):
        raise TimeoutError(f"{what} took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


N = 1_000_000 if SLOW else 50_000  # characters per pathological text
PATTERNS = {  # name: (unit repeated to N characters, format): shapes that make regexes and parsers work hard
    "abbreviation dots": ("Mr. D.K. U.S. e.g. a.", "txt"),
    "only dots": (".", "txt"),
    "unclosed tags": ("<", "html"),
    "unclosed attribute": ('<a href="', "html"),
    "nested divs": ("<div><p>", "html"),
    "unclosed comment": ("<!--x", "html"),
    "heading marks": ("#", "md"),
    "front matter lines": ("---\na: b\n", "md"),
    "setext underline": ("=\n", "md"),
    "list markers": ("- ", "md"),
    "link openers": ("[a](", "md"),
    "dates": ("12 May 2024, ", "txt"),
    "one long word": ("abcdefghij", "txt"),
    "digits": ("1", "txt"),
    "zero-width": ("a\u200b", "txt"),
    "combining marks": ("\u0301", "txt"),
    "CJK": ("\u65e5\u672c\u8a9e\u306e\u5831\u544a\u66f8", "txt"),
    "emoji": ("\U0001f600", "txt"),
    "quotes": ('"\u201c\u2019', "txt"),
    "blank lines": ("\n\n\n", "txt"),
    "ellipses": ("\u2026 ", "txt"),
}


@pytest.fixture(scope="module")
def chunker(embedder) -> Chunker:
    """The chunker as build_pipeline makes it for the default embedder."""
    cap = embedder.max_tokens - 2
    return Chunker(embedder.count_tokens, chunk_tokens=200, overlap=40, max_tokens=cap)


def _load_and_chunk(text: str, fmt: str, chunker: Chunker, what: str) -> None:
    with time_limit(60 if SLOW else 20, what):
        try:
            doc = load_text(text, source=f"x.{fmt}", fmt=fmt)
        except IngestError as exc:
            assert exc.reason
            return
        chunks = chunker.split(doc)
    assert chunks
    for c in chunks:
        assert c.text and c.text == doc.text[c.start : c.end]
        assert chunker.count_tokens(c.text) <= chunker.max_tokens


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pathological_text_loads_and_chunks_in_bounded_time(name, chunker):
    unit, fmt = PATTERNS[name]
    _load_and_chunk((unit * (N // len(unit) + 1))[:N], fmt, chunker, name)


@hsettings(
    max_examples=200 if SLOW else 15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(st.sampled_from(sorted(PATTERNS)), st.integers(1, 4000)), min_size=1, max_size=8),
    st.sampled_from(["txt", "md", "html"]),
)
def test_mixtures_of_pathological_text_finish_in_bounded_time(chunker, parts, fmt):
    text = "".join(PATTERNS[name][0] * n for name, n in parts)
    _load_and_chunk(text, fmt, chunker, f"{[p[0] for p in parts]} as {fmt}")


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html"])
def test_big_files_at_the_size_limit_load_in_bounded_time(tmp_path, suffix):
    """A file just under a 2 MB limit of the worst unit for its format: read, decoded, parsed in time."""
    unit = {".txt": "Mr. a. ", ".md": "# [a](", ".html": "<div><a href=x>"}[suffix]
    path = tmp_path / f"big{suffix}"
    path.write_text(unit * (2 * 1024 * 1024 // len(unit) - 1), encoding="utf-8")
    t0 = time.perf_counter()
    with time_limit(60, path.name):
        try:
            doc = load_file(path, path.name, max_bytes=2 * 1024 * 1024)
        except IngestError as exc:
            assert exc.reason
            return
    assert doc.text and time.perf_counter() - t0 < 60
