"""Ingest and store on real Chroma: idempotence, edits, crashes, mismatch.

What is checked here is the store's commit protocol, which does not depend on what the vectors
mean, so most tests embed with the fake of ``tests/fakes.py`` (through the real registry); the
reindex test moves a store from the real local embedder to an OpenAI-compatible one.
"""

from __future__ import annotations

import shutil

import pytest

from rag.adapters.chroma import ChromaStore
from rag.errors import EmbedderMismatchError
from rag.pipeline import build_pipeline
from rag.retrieve.retriever import Filters
from tests.conftest import SAMPLE
from tests.fakes import FAKE_EMBEDDER

OTHER = {
    "markets.txt": "Stocks fell sharply on Tuesday as investors weighed higher bond yields. The Nasdaq lost 2 percent.",
    "football.md": "# Cup final\n\nMadrid won the cup final 2-1 after extra time on Saturday night in front of 80,000 fans.",
    "weather.txt": "Heavy rain is expected across the north of England this weekend, forecasters said on Friday.",
}


@pytest.fixture
def library(tmp_path):
    """A folder with the sample report and a few unrelated reports."""
    root = tmp_path / "reports"
    root.mkdir()
    shutil.copy(SAMPLE, root / SAMPLE.name)
    for name, text in OTHER.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def pipe(settings):
    return build_pipeline(settings.replace(embedder=FAKE_EMBEDDER))


def _chunk_ids(pipe) -> list[str]:
    return [c.chunk_id for c in pipe.store.iter_chunks()]


def _assert_consistent(pipe) -> None:
    """Every stored chunk belongs to a committed report version; counts add up; no duplicates."""
    committed = pipe.store.committed()
    chunks = list(pipe.store.iter_chunks())
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids))
    for c in chunks:
        assert committed[c.source].doc_id == c.doc_id, f"orphan chunk {c.chunk_id}"
    assert sum(i.chunks for i in committed.values()) == len(chunks)


def test_ingest_is_idempotent(pipe, library):
    first = pipe.ingest([library])
    assert {a["source"] for a in first.added} == {SAMPLE.name, *OTHER}
    assert first.ok and not first.unchanged
    before = sorted(_chunk_ids(pipe))
    gen = pipe.store.generation()
    second = pipe.ingest([library])
    assert not second.added and not second.updated and len(second.unchanged) == 4
    assert sorted(_chunk_ids(pipe)) == before
    assert pipe.store.generation() == gen, "an unchanged re-ingest must not touch the store"
    _assert_consistent(pipe)


def test_edited_file_replaces_its_chunks(pipe, library):
    pipe.ingest([library])
    old_id = pipe.store.committed()["weather.txt"].doc_id
    (library / "weather.txt").write_text(
        "Snow is now forecast for Scotland on Monday, with roads likely closed."
    )
    report = pipe.ingest([library])
    assert [u["source"] for u in report.updated] == ["weather.txt"]
    assert len(report.unchanged) == 3
    _assert_consistent(pipe)
    assert all(c.doc_id != old_id for c in pipe.store.iter_chunks())
    hits = pipe.search("snow forecast Scotland roads")
    assert hits[0].chunk.source == "weather.txt" and "Snow" in hits[0].chunk.text


def test_same_content_under_another_name_is_not_stored_twice(pipe, library, tmp_path):
    pipe.ingest([library])
    copy = tmp_path / "copy-of-sample.txt"
    shutil.copy(SAMPLE, copy)
    report = pipe.ingest([copy])
    assert report.unchanged and report.unchanged[0]["duplicate_of"] == SAMPLE.name
    assert "copy-of-sample.txt" not in pipe.store.committed()
    _assert_consistent(pipe)


def test_forget_removes_report_and_chunks(pipe, library):
    pipe.ingest([library])
    assert pipe.forget("markets.txt")
    assert "markets.txt" not in pipe.store.committed()
    assert all(c.source != "markets.txt" for c in pipe.store.iter_chunks())
    assert all(h.chunk.source != "markets.txt" for h in pipe.search("Nasdaq stocks bond yields"))
    assert not pipe.forget("markets.txt")
    _assert_consistent(pipe)


def test_interrupted_write_is_invisible_and_repaired(pipe, library):
    """A crash after the chunks were written but before the commit: readers ignore them, a rerun completes."""
    pipe.ingest([library / "markets.txt"])
    from rag.ingest.loading import load_file

    doc = load_file(library / "weather.txt", "weather.txt", max_bytes=10**7)
    chunks = pipe.chunker.split(doc)
    pipe.store.begin(doc)
    pipe.store.add_chunks(chunks, pipe.embedder.embed([c.text for c in chunks]))
    # -- simulated crash here: no commit --
    assert all(
        h.chunk.source != "weather.txt" for h in pipe.search("heavy rain north of England forecasters")
    )
    report = pipe.ingest([library])
    assert "weather.txt" in {a["source"] for a in report.added}
    assert report.repaired == ["weather.txt"]
    _assert_consistent(pipe)


def test_store_refuses_another_embedder(pipe, library, settings):
    pipe.ingest([library])
    with pytest.raises(EmbedderMismatchError) as err:
        ChromaStore(
            pipe.store.client,
            prefix=settings.collection,
            embedder_name="openai/text-embedding-3-small",
            dim=1536,
            location=str(settings.store),
        )
    msg = str(err.value)
    assert FAKE_EMBEDDER in msg and "rag reindex" in msg and "RAG_EMBEDDER" in msg


def test_reindex_with_another_embedder(settings, embedder, library, fake_openai):
    """A store built locally, reopened with an OpenAI-compatible embedder: refused, then rebuilt by reindex."""
    build_pipeline(settings, embedder=embedder).ingest([library])
    remote = settings.replace(
        embedder="openai/compat-embed-16",
        openai_api_key="sk-test-reindex",
        openai_base_url=fake_openai.base_url,
    )
    with pytest.raises(EmbedderMismatchError):
        build_pipeline(remote)
    pipe = build_pipeline(remote, reindex=True)
    report = pipe.reindex()
    assert report.ok and len(report.added) + len(report.updated) == 4
    assert pipe.store.committed().keys() == {SAMPLE.name, *OTHER}
    _assert_consistent(pipe)
    assert any(r.path.endswith("/embeddings") for r in fake_openai.requests)


def test_filters_by_source_and_date(pipe, tmp_path):
    root = tmp_path / "dated"
    root.mkdir()
    (root / "a.html").write_text(
        '<html><head><title>Port strike</title><meta property="article:published_time" content="2024-03-05">'
        "</head><body><p>Dock workers in Rotterdam began a strike over pay on Monday.</p></body></html>"
    )
    (root / "b.html").write_text(
        '<html><head><title>Port strike ends</title><meta property="article:published_time" content="2024-04-20">'
        "</head><body><p>The Rotterdam dock strike over pay ended after a deal on Friday.</p></body></html>"
    )
    pipe.ingest([root])
    q = "Rotterdam dock strike pay"
    assert {h.chunk.source for h in pipe.search(q)} == {"a.html", "b.html"}
    assert {h.chunk.source for h in pipe.search(q, filters=Filters(sources=("b.html",)))} == {"b.html"}
    april = Filters(date_from="2024-04-01", date_to="2024-04-30")
    assert {h.chunk.source for h in pipe.search(q, filters=april)} == {"b.html"}
    for method in ("dense", "bm25"):
        assert {h.chunk.source for h in pipe.search(q, filters=april, method=method)} == {"b.html"}


def test_bad_files_do_not_stop_the_batch_or_change_the_store(pipe, library):
    pipe.ingest([library])
    before = sorted(_chunk_ids(pipe))
    (library / "empty.txt").write_text("   \n")
    (library / "junk.txt").write_bytes(bytes(range(256)) * 50)
    (library / "new.txt").write_text("The central bank raised interest rates by a quarter point on Thursday.")
    report = pipe.ingest([library])
    assert {r["path"].split("/")[-1] for r in report.rejected} == {"empty.txt", "junk.txt"}
    assert all(r["reason"] for r in report.rejected)
    assert [a["source"] for a in report.added] == ["new.txt"]
    after = set(_chunk_ids(pipe))
    assert set(before) <= after and len(after) == len(before) + report.added[0]["chunks"]
    _assert_consistent(pipe)
