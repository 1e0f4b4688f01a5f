"""Token counting: exact with the shared tiktoken cache, honest estimates without it."""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from pathlib import Path

import pytest

from rag.adapters.tokens import ENCODING_FILES, TokenCounter, cached_encoding_problem, tiktoken_cache_dir
from rag.errors import EncodingUnavailableError

CACHE = Path(__file__).resolve().parents[3] / "shared" / "tiktoken-cache"
needs_cache = pytest.mark.skipif(
    not (CACHE / "fb374d419588a4632f3f557e76b4b70aebbca790").is_file(),
    reason="the shared tiktoken cache is not present",
)


@needs_cache
@pytest.mark.parametrize(
    "model, encoding",
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4o", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("openai/gpt-4o-mini", "o200k_base"),
    ],
)
def test_known_models_count_exactly(model, encoding):
    import tiktoken

    counter = TokenCounter(model)
    assert counter.exact and counter.note == "" and counter.encoding_name == encoding
    text = "The India–Russia working group met in Moscow on 12 March 2024."
    assert counter.count(text) == len(tiktoken.get_encoding(encoding).encode(text))


@needs_cache
def test_unknown_model_falls_back_to_o200k_with_a_note():
    counter = TokenCounter("llama3.1:8b")
    assert counter.exact and counter.encoding_name == "o200k_base"
    assert "does not know the model 'llama3.1:8b'" in counter.note


@needs_cache
def test_special_token_text_is_counted_not_rejected():
    counter = TokenCounter("gpt-4o-mini")
    assert counter.count("end <|endoftext|> here") > 3


@needs_cache
def test_falls_back_to_cl100k_when_only_it_is_cached(tmp_path, monkeypatch):
    shutil.copy(CACHE / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4", tmp_path)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    counter = TokenCounter("gpt-4o-mini")
    assert counter.exact and counter.encoding_name == "cl100k_base"
    assert "o200k_base could not be loaded" in counter.note


def test_degraded_offline_path_is_fast_and_honest(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # empty: nothing cached
    start = time.monotonic()
    counter = TokenCounter("gpt-4o-mini")
    assert time.monotonic() - start < 1.0  # never tried the network
    assert not counter.exact and counter.encoding_name is None
    assert counter.note.startswith(
        "tiktoken encoding o200k_base could not be loaded (offline and not in TIKTOKEN_CACHE_DIR"
    )
    assert counter.note.endswith("token counts are estimates")
    assert counter.count("x" * 10) == math.ceil(10 / 4) == 3
    assert counter.count("") == 0
    assert list(tmp_path.iterdir()) == []  # and wrote nothing there


def test_require_exact_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(EncodingUnavailableError, match="TIKTOKEN_CACHE_DIR"):
        TokenCounter("gpt-4o-mini", require_exact=True)


@needs_cache
def test_corrupt_cache_file_is_left_alone(tmp_path, monkeypatch):
    bad = tmp_path / "fb374d419588a4632f3f557e76b4b70aebbca790"
    bad.write_bytes(b"not a bpe file")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert "corrupt" in (cached_encoding_problem("o200k_base") or "")
    counter = TokenCounter("gpt-4o-mini")
    assert not counter.exact and "corrupt" in counter.note
    assert bad.read_bytes() == b"not a bpe file"  # tiktoken would have deleted it and gone online


def test_empty_cache_dir_setting_disables_the_cache(monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    assert tiktoken_cache_dir() is None
    assert "disables" in (cached_encoding_problem("cl100k_base") or "")


def test_encoding_table_matches_tiktoken():
    source = Path(__import__("tiktoken_ext.openai_public", fromlist=["x"]).__file__).read_text()
    for name, (url, sha256) in ENCODING_FILES.items():
        assert url in source and sha256 in source, name


@needs_cache
def test_shared_cache_files_are_the_expected_ones():
    for name in ("o200k_base", "cl100k_base", "p50k_base"):
        url, sha256 = ENCODING_FILES[name]
        path = CACHE / hashlib.sha1(url.encode()).hexdigest()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256


@pytest.mark.parametrize("exact", [True, False])
def test_pack_counts_leading_passages_that_fit(exact, tmp_path, monkeypatch):
    if not exact:
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    elif not CACHE.is_dir():
        pytest.skip("the shared tiktoken cache is not present")
    counter = TokenCounter("gpt-4o-mini")
    assert counter.exact is exact
    passages = ["alpha beta gamma " * 10, "delta " * 20, "epsilon " * 40, "z"]
    sizes = [counter.count(p) for p in passages]
    assert counter.pack(passages, sum(sizes)) == 4
    assert counter.pack(passages, sum(sizes[:2])) == 2
    assert (
        counter.pack(passages, sum(sizes[:3]) - 1) == 2
    )  # in order: the short last one is not pulled forward
    assert counter.pack(passages, 0) == 0
    assert counter.pack([], 100) == 0
    assert counter.pack(passages, sum(sizes[:2]) + 2, overhead=1) == 2
    assert counter.pack(passages, sum(sizes[:2]) + 1, overhead=1) == 1


def test_count_messages_adds_overhead(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    counter = TokenCounter("gpt-4o-mini")
    msgs = [{"role": "system", "content": "x" * 8}, {"role": "user", "content": "y" * 4}]
    assert counter.count_messages(msgs) == 3 + (3 + 2) + (3 + 1)
