"""The plain pipeline a user would write instead of Dossier, for the same-run comparison.

LangChain's ``RecursiveCharacterTextSplitter`` (the tutorial settings: 1000 characters, 200 overlap),
``langchain_chroma.Chroma`` persisted to a folder, and Dossier's own embedder wrapped as a LangChain
``Embeddings`` class, so both sides embed with the same model and runtime. Querying is
``similarity_search(k)``: dense retrieval only, no BM25, no fusion, no de-duplication.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from langchain_chroma import Chroma
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

CHUNK_SIZE, CHUNK_OVERLAP = 1000, 200


class DossierEmbeddings(Embeddings):
    """Dossier's embedder as a LangChain Embeddings (what a user would write)."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()


def open_store(embedder: Any, persist_dir: Path) -> Chroma:
    """A LangChain Chroma vector store in a folder, embedding with ``embedder``."""
    return Chroma(
        collection_name="langchain",
        embedding_function=DossierEmbeddings(embedder),
        persist_directory=str(persist_dir),
        collection_metadata={"hnsw:space": "cosine"},
    )


def add_files(store: Chroma, paths: list[Path], root: Path) -> dict[str, Any]:
    """Read, split, embed and store the files (timed as a whole); chunk counts for the record."""
    t0 = time.perf_counter()
    docs = [
        LCDocument(page_content=p.read_text(encoding="utf-8"), metadata={"source": str(p.relative_to(root))})
        for p in paths
    ]
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    chunks = splitter.split_documents(docs)
    store.add_documents(chunks)
    seconds = time.perf_counter() - t0
    counter = store.embeddings.embedder.count_tokens  # type: ignore[union-attr]
    sizes = [counter(c.page_content) for c in chunks]  # after the timed part
    return {
        "chunks": len(chunks),
        "seconds": seconds,
        "tokens": sum(sizes),
        "over_254_tokens": sum(n > 254 for n in sizes),
    }


SPLITTER = f"RecursiveCharacterTextSplitter(chunk_size={CHUNK_SIZE}, chunk_overlap={CHUNK_OVERLAP})"


def search(store: Chroma, query: str, k: int) -> list[Any]:
    """The k nearest chunks (what the baseline's "search" is)."""
    return store.similarity_search(query, k=k)
