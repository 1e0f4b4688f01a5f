"""The seams: what the pipeline needs from an embedder, a store, a chat model and a token counter.

Every collaborator is typed with one of these protocols, never with a concrete
class or ``Any``; the implementations live in ``rag.adapters`` (and the test
fakes register through the same registries). Protocols are structural: a class
conforms by having the attributes and methods, it need not inherit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.types import ChatResult, Chunk, Document, Filters, SourceInfo


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str  # "provider/model"; stored in the index and compared on reopen
    dim: int
    max_tokens: int | None  # word pieces the model reads incl. special tokens; None when unknown

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts``, shape (len(texts), dim)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Vector of one query, shape (dim,)."""
        ...

    def count_tokens(self, text: str) -> int:
        """The model's own tokens in ``text``, without special tokens."""
        ...


@runtime_checkable
class Store(Protocol):
    """Reports and their chunks with vectors, written with a commit protocol (see ``rag.adapters.chroma``).

    Readers trust only chunks whose ``doc_id`` is the committed one of their source.
    """

    location: str  # shown in messages: a folder or a server URL
    embedder_name: str
    dim: int
    writes: int  # committed writes through this object (a reader may skip re-reading the generation)

    def generation(self) -> int:
        """A number that changes whenever any report is added, replaced or forgotten."""
        ...

    def snapshot_key(self) -> str | None:
        """Identity of this store's contents for an on-disk snapshot copy (None: keep no copy)."""
        ...

    def committed(self) -> dict[str, SourceInfo]:
        """Every committed report by source name."""
        ...

    def document(self, source: str) -> Document | None:
        """The stored report (full normalised text), or None."""
        ...

    def documents(self, sources: Iterable[str] | None = None) -> list[Document]:
        """Several stored reports (all when ``sources`` is None), in source order."""
        ...

    def query(self, vector: np.ndarray, n: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity, best first."""
        ...

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored embeddings by chunk id (missing ids are left out)."""
        ...

    def get_chunks(self, ids: list[str]) -> dict[str, Chunk]:
        """Chunks by id (missing ids are left out)."""
        ...

    def iter_chunks(self, batch: int = 5000) -> Iterator[Chunk]:
        """Every stored chunk (committed or not)."""
        ...

    def count_chunks(self) -> int:
        """Rows in the chunk collection."""
        ...

    def write(self, items: list[tuple[Document, list[Chunk], np.ndarray]], batch: int | None = None) -> None:
        """Store several reports with their chunks and vectors, each committed only when complete."""
        ...

    def forget(self, source: str) -> bool:
        """Remove a report and its chunks; False when it was not stored."""
        ...

    def repair(self) -> list[str]:
        """Delete chunks left by interrupted writes; returns the sources repaired."""
        ...

    def reset_chunks(self) -> None:
        """Drop every chunk (keeping the reports' texts) and start an empty chunk index for this embedder."""
        ...


class ChatModel(Protocol):
    """A chat model: one blocking call, one streaming call."""

    name: str  # model id
    endpoint: str  # host shown in the UI (never the key)
    last_usage: dict[str, int]  # usage of the last finished stream() ({} when the server sent none)
    last_finish_reason: str | None  # finish reason of the last finished stream()

    def complete(
        self, messages: list[dict], *, json_schema: dict | None = None, schema_name: str = "answer"
    ) -> ChatResult:
        """The full reply; with ``json_schema`` the server is asked for JSON matching it."""
        ...

    def stream(self, messages: list[dict]) -> Iterator[str]:
        """The reply as text deltas."""
        ...


class TokenCounter(Protocol):
    """Counts tokens as the configured chat model would (``exact`` is False when only estimating)."""

    @property
    def exact(self) -> bool: ...

    @property
    def note(self) -> str: ...

    def count(self, text: str) -> int: ...

    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int: ...

    def pack(self, passages: Sequence[str], budget: int, *, overhead: int = 0) -> int: ...


class Chunker(Protocol):
    """Splits a document into chunks, each an exact span of its text."""

    def split(self, doc: Document) -> list[Chunk]: ...
