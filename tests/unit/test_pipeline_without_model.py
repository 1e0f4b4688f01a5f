"""A whole pipeline in the unit tier: the fake embedder (through the registry) and the in-memory store."""

from __future__ import annotations

import pytest

from rag.adapters.embedders import build_embedder
from rag.config import Settings
from rag.pipeline import build_pipeline
from rag.ports import Store
from rag.types import Filters
from tests.conftest import SAMPLE
from tests.fakes import FAKE_EMBEDDER, MemoryStore


@pytest.fixture
def pipe(tmp_path):
    settings = Settings(store=tmp_path / "store", embedder=FAKE_EMBEDDER)
    embedder = build_embedder(settings)
    return build_pipeline(settings, embedder=embedder, store=MemoryStore(embedder))


def test_the_memory_store_keeps_the_store_protocol(pipe):
    assert isinstance(pipe.store, Store)


def test_ingest_is_idempotent_and_forget_removes(pipe):
    first = pipe.ingest([SAMPLE])
    assert first.ok and len(first.added) == 1 and first.chunks > 0
    again = pipe.ingest([SAMPLE])
    assert len(again.unchanged) == 1 and again.chunks == 0
    assert [i.source for i in pipe.sources()] == [SAMPLE.name]
    assert pipe.forget(SAMPLE.name) and pipe.sources() == [] and pipe.store.count_chunks() == 0


def test_search_ask_and_brief_cite_exact_spans(pipe):
    pipe.ingest([SAMPLE])
    doc = pipe.document(SAMPLE.name)
    assert doc is not None
    hits = pipe.search("Who co-chaired the meeting in Moscow?", method="bm25")
    assert hits and all(doc.text[h.chunk.start : h.chunk.end] == h.chunk.text for h in hits)
    assert pipe.search("Moscow", filters=Filters(sources=("other.txt",))) == []
    answer = pipe.ask("Who co-chaired the meeting in Moscow?")
    assert all(doc.text[c.start : c.end] == c.quote for c in answer.citations)
    brief = pipe.brief(words=60)
    assert brief.word_count <= 60 and all(doc.text[c.start : c.end] == c.quote for c in brief.citations)
    summary = pipe.summary()
    assert summary["mode"] == "extractive" and summary["sources"][0]["source"] == SAMPLE.name


def test_reindex_rebuilds_the_chunks(pipe):
    pipe.ingest([SAMPLE])
    before = pipe.store.count_chunks()
    report = pipe.reindex()
    assert report.ok and pipe.store.count_chunks() == before
