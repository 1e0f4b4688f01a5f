"""A whole pipeline with the fake embedder (registered through the real registry): no model needed."""

from __future__ import annotations

from rag.config import Settings
from rag.pipeline import build_pipeline
from tests.conftest import SAMPLE
from tests.fakes import FAKE_EMBEDDER


def test_ingest_search_and_ask_with_the_fake_embedder(tmp_path):
    pipe = build_pipeline(Settings(store=tmp_path / "store", embedder=FAKE_EMBEDDER))
    report = pipe.ingest([SAMPLE])
    assert report.ok and report.chunks > 0
    assert pipe.status()["embedder"] == FAKE_EMBEDDER and pipe.status()["dimension"] == 4
    hits = pipe.search("Who co-chaired the meeting in Moscow?")
    assert hits and all(h.chunk.text for h in hits)
    answer = pipe.ask("Who co-chaired the meeting in Moscow?")
    assert answer.mode == "extractive"
    for c in answer.citations:
        doc = pipe.document(c.source)
        assert doc is not None and doc.text[c.start : c.end] == c.quote
