"""Publisher, author and page offsets survive the store, and citations carry the page they point into."""

from __future__ import annotations

from rag.ingest.loading import content_id
from rag.pipeline import build_pipeline
from rag.types import Document, page_of


def _paged_doc() -> Document:
    pages = [
        "Page one says the plant opened in Perm in 2019.",
        "Page two says the Moscow meeting was co-chaired by Sanjeev Kumar and Andrey Boytsov.",
        "Page three says the engines were delivered in March.",
    ]
    text, starts = "", []
    for p in pages:
        starts.append(len(text))
        text += p + "\n\n"
    text = text.rstrip()
    doc = Document(
        source="paged.pdf",
        title="Paged report",
        text=text,
        format="pdf",
        publisher="Defence Weekly",
        author="A. Writer",
        page_starts=starts,
    )
    doc.doc_id = content_id(text)
    return doc


def test_page_of_maps_offsets_to_pages():
    starts = [0, 10, 25]
    assert [page_of(i, starts) for i in (0, 9, 10, 24, 25, 99)] == [1, 1, 2, 2, 3, 3]
    assert page_of(5, []) is None


def test_metadata_and_pages_round_trip_through_chroma(settings, embedder):
    pipe = build_pipeline(settings.replace(chunk_tokens=24, chunk_overlap=0), embedder=embedder)
    doc = _paged_doc()
    pipe.ingest_documents([doc])
    stored = pipe.document("paged.pdf")
    assert stored is not None
    assert (stored.publisher, stored.author, stored.page_starts) == (
        doc.publisher,
        doc.author,
        doc.page_starts,
    )
    info = {i.source: i for i in pipe.sources()}["paged.pdf"]
    assert (info.publisher, info.author, info.pages) == ("Defence Weekly", "A. Writer", 3)
    hits = pipe.search("who co-chaired the Moscow meeting", top_k=5)
    assert hits and all(h.chunk.publisher == "Defence Weekly" for h in hits)
    for h in hits:  # every character of every chunk maps to the page the document says
        c = h.chunk
        for off in range(c.start, c.end):
            assert c.page_at(off) == doc.page_at(off)
    answer = pipe.ask("Who co-chaired the Moscow meeting?")
    assert answer.citations
    for cit in answer.citations:
        assert cit.page == doc.page_at(cit.start) and cit.publisher == "Defence Weekly"
    assert any(c.page == 2 for c in answer.citations)


def test_a_new_process_sees_the_metadata_from_the_snapshot_copy(settings, embedder):
    """The on-disk snapshot copy (what a new process loads) keeps publisher and pages."""
    pipe = build_pipeline(settings.replace(chunk_tokens=24, chunk_overlap=0), embedder=embedder)
    doc = _paged_doc()
    pipe.ingest_documents([doc])
    pipe.search("plant opened in Perm", top_k=3)  # builds and saves the snapshot copy
    fresh = build_pipeline(settings.replace(chunk_tokens=24, chunk_overlap=0), embedder=embedder)
    hits = fresh.search("engines were delivered", top_k=5)
    assert hits
    for h in hits:
        assert h.chunk.publisher == "Defence Weekly"
        assert h.chunk.page == doc.page_at(h.chunk.start)
        assert all(h.chunk.page_at(o) == doc.page_at(o) for o in range(h.chunk.start, h.chunk.end))
