"""Hybrid retrieval on the sample report among unrelated reports, embedded and in server mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.config import Settings
from rag.nlp.text import fold
from rag.pipeline import build_pipeline
from tests.conftest import SAMPLE, SHARED

REPEATED = "strategic discussions encompassed projects of mutual interest"


def _unrelated_reports(root: Path, n: int = 25) -> None:
    """Real news articles from the MultiHop-RAG corpus (read at run time) as distractors."""
    corpus = SHARED / "datasets" / "multihop-rag" / "corpus.json"
    if not corpus.exists():
        pytest.skip("../shared/datasets/multihop-rag is not beside the checkout")
    for i, art in enumerate(json.loads(corpus.read_text())[:n]):
        (root / f"news-{i:03d}.txt").write_text(f"{art['title']}\n\n{art['body'][:4000]}", encoding="utf-8")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    shutil.copy(SAMPLE, root / SAMPLE.name)
    _unrelated_reports(root)
    return root


def _check_retrieval(pipe) -> None:
    hits = pipe.search("who co-chaired the meeting in Moscow")
    top = hits[0].chunk
    assert top.source == SAMPLE.name
    assert "co-chaired the meeting with Andrey A. Boytsov" in top.text
    doc = pipe.document(SAMPLE.name)
    assert doc.text[top.start : top.end] == top.text
    plant = pipe.search("Which plant in Saint Petersburg did Sanjeev Kumar visit?")
    assert plant[0].chunk.source == SAMPLE.name and "UEC-Klimov" in plant[0].chunk.text


def test_sample_passage_first_among_unrelated(settings, embedder, corpus_dir):
    pipe = build_pipeline(settings, embedder=embedder)
    pipe.ingest([corpus_dir])
    _check_retrieval(pipe)


def test_near_duplicate_passages_take_one_slot(settings, embedder, corpus_dir, tmp_path):
    """A syndicated copy of the sample (another outlet's headline and sign-off) adds passages that
    nearly repeat the original's; each such pair takes one slot, unless suppression is switched off."""
    from rag.nlp.text import containment, shingles

    lib = tmp_path / "lib"
    shutil.copytree(corpus_dir, lib)
    text = SAMPLE.read_text(encoding="utf-8")
    (lib / "syndicated-copy.txt").write_text(
        "Via wire services: India and Russia hold defence talks\n\n" + text + "\n\nReporting by our staff.",
        encoding="utf-8",
    )
    query = "strategic discussions localisation of critical manufacturing processes"

    def near_pairs(hits) -> int:
        sh = [shingles(h.chunk.text) for h in hits]
        return sum(
            containment(sh[i], sh[j]) >= settings.dedupe_threshold
            for i in range(len(sh))
            for j in range(len(sh))
            if i != j
        )

    pipe = build_pipeline(settings, embedder=embedder)
    pipe.ingest([lib])
    hits = pipe.search(query, top_k=5)
    assert any(REPEATED in fold(h.chunk.text) for h in hits)
    assert near_pairs(hits) == 0, [(h.chunk.source, h.chunk.text[:60]) for h in hits]
    off = build_pipeline(settings.replace(dedupe_threshold=1.01), embedder=embedder)
    assert near_pairs(off.search(query, top_k=5)) > 0  # the copies do compete when not suppressed


def test_bm25_and_dense_alone_are_available(settings, embedder, corpus_dir):
    pipe = build_pipeline(settings, embedder=embedder)
    pipe.ingest([corpus_dir])
    for method in ("bm25", "dense"):
        hits = pipe.search("Sanjeev Kumar Andrey Boytsov co-chaired", method=method)
        assert hits and hits[0].chunk.source == SAMPLE.name
        assert (hits[0].dense_rank is None) == (method == "bm25")


@pytest.mark.server
def test_server_mode(chroma_server, embedder, corpus_dir, tmp_path):
    host, port = chroma_server
    settings = Settings(store=tmp_path / "unused", chroma_host=host, chroma_port=port, collection="srvtest")
    pipe = build_pipeline(settings, embedder=embedder)
    report = pipe.ingest([corpus_dir])
    assert report.ok
    again = pipe.ingest([corpus_dir])
    assert not again.added and not again.updated
    _check_retrieval(pipe)
    assert not (tmp_path / "unused").exists(), "server mode must not create the local store folder"
    # A second client (another process would see the same) reads what the first wrote.
    other = build_pipeline(settings, embedder=embedder)
    assert SAMPLE.name in {s.source for s in other.sources()}
    for s in other.sources():
        other.forget(s.source)
    assert other.store.count_chunks() == 0


def test_unreachable_server_is_a_clear_error(embedder, tmp_path):
    import socket

    from rag.errors import StoreError

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(StoreError) as err:
        build_pipeline(Settings(chroma_host="127.0.0.1", chroma_port=port), embedder=embedder)
    assert f"127.0.0.1:{port}" in str(err.value) and "chroma run" in str(err.value)


def _snapshot_folders(settings: Settings) -> list[Path]:
    root = Path(settings.store) / "dossier-snapshot" / settings.collection
    return sorted(p for p in root.iterdir() if p.name.startswith("v")) if root.is_dir() else []


def test_saved_snapshot_is_reused_by_a_new_pipeline_and_rebuilt_when_damaged(settings, embedder, corpus_dir):
    pipe = build_pipeline(settings, embedder=embedder)
    pipe.ingest([corpus_dir])
    query = "who co-chaired the meeting in Moscow"
    first = [(h.chunk.chunk_id, h.score) for h in pipe.search(query)]
    (folder,) = _snapshot_folders(settings)  # one copy, for the current generation
    # A second process-like pipeline on the same store reads that copy instead of rebuilding.
    again = build_pipeline(settings, embedder=embedder)
    assert [(h.chunk.chunk_id, h.score) for h in again.search(query)] == first
    # A damaged copy is never trusted: the next pipeline rebuilds and gives the same results.
    (folder / "chunks.jsonl").write_text('["garbage"]\n', encoding="utf-8")
    third = build_pipeline(settings, embedder=embedder)
    assert [(h.chunk.chunk_id, h.score) for h in third.search(query)] == first


def test_snapshot_save_survives_other_processes_tmp_folders_vanishing(settings, embedder, corpus_dir):
    pipe = build_pipeline(settings, embedder=embedder)
    pipe.ingest([corpus_dir])
    pipe.search("Moscow")
    root = Path(settings.store) / "dossier-snapshot" / settings.collection
    # Another process's tmp folder that disappears between listing and stat() (here: a dangling link).
    (root / "tmp-999999-deadbeef").symlink_to(root / "gone")
    shutil.rmtree(_snapshot_folders(settings)[0])
    fresh = build_pipeline(settings, embedder=embedder)
    assert fresh.search("Moscow")  # rebuilt and saved again without an error
    assert len(_snapshot_folders(settings)) == 1


def test_filtered_dense_search_matches_chromas_where_on_every_path(
    settings, embedder, corpus_dir, monkeypatch
):
    """Filters are applied from the snapshot (over-fetch, exact scoring, or Chroma's ``where`` as the last
    resort); each path must return what Chroma's own filtered query returns."""
    import numpy as np

    import rag.retrieve.retriever as retrieval
    from rag.types import Filters

    pipe = build_pipeline(settings, embedder=embedder)
    pipe.ingest([corpus_dir])
    retriever = pipe.retriever
    snap = retriever.snapshot()
    sources = sorted({c.source for c in snap.chunks.values()})
    filters = [
        Filters(sources=tuple(sources[:2])),
        Filters(sources=tuple(sources[: len(sources) - 3])),
        Filters(sources=(SAMPLE.name,)),
    ]
    queries = ["who co-chaired the meeting in Moscow", "company earnings and market share", "court ruling"]

    def by_where(vec, f, n):  # Chroma's own filtered query: the store turns the filters into a `where`
        rows = pipe.store.query(vec, n + 10, f)
        return [cid for cid, _ in rows if cid in snap.chunks][:n]

    for exact, overfetch in ((600, 2000), (100_000, 0), (0, 0)):  # natural, exact only, where only
        monkeypatch.setattr(retrieval, "EXACT_FILTERED", exact)
        monkeypatch.setattr(retrieval, "OVERFETCH_MAX", overfetch)
        for f in filters:
            for q in queries:
                vec = np.asarray(embedder.embed_query(q), dtype=np.float32)
                got = retriever._dense_filtered(vec, 10, f, snap)
                assert [cid for cid, _ in got] == by_where(vec, f, 10), (exact, overfetch, f, q)
                assert all(f.matches(snap.chunks[cid]) for cid, _ in got)
