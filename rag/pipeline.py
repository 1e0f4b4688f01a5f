"""The composition root and the facade: the only place that builds clients and wires the stages.

``build_pipeline(settings)`` returns a ``Pipeline`` whose methods are what the CLI,
the page and the evaluation harness call; none of them reaches past it. Every
collaborator is typed with a protocol of ``rag.ports`` and can be passed in (tests
share one embedder across many pipelines, or pass a fake). What a command does not
need is not built: the embedder's model loads on the first text embedded, the
chunker (and LangChain's splitter) on the first ingest, the answerer and summarizer
on the first question or brief.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.errors import RagError
from rag.ingest.indexing import ingest_documents, ingest_paths
from rag.ports import ChatModel, Chunker, Embedder, Store, TokenCounter
from rag.retrieve.retriever import Retriever
from rag.types import Answer, Brief, Document, Filters, Hit, IngestReport, Progress, SourceInfo, Summary

if TYPE_CHECKING:
    from rag.answer.answerer import Answerer, Event
    from rag.summarize.summarizer import Summarizer


@dataclass
class Pipeline:
    """Every operation of Dossier over one store, one embedder and optionally one LLM."""

    settings: Settings
    embedder: Embedder
    store: Store
    retriever: Retriever
    chat: ChatModel | None = None
    token_counter: TokenCounter | None = None
    _chunker: Chunker | None = field(default=None, repr=False)
    _answerer: Answerer | None = field(default=None, repr=False)
    _summarizer: Summarizer | None = field(default=None, repr=False)

    @property
    def mode(self) -> str:
        """'llm' when an LLM is configured, else 'extractive'."""
        return "llm" if self.chat is not None else "extractive"

    # --- library ------------------------------------------------------------------

    @property
    def chunker(self) -> Chunker:
        """Sentence-aligned chunks sized in the embedder's own tokens (built on first ingest)."""
        if self._chunker is None:
            from rag.ingest.chunking import Chunker as SentenceChunker

            cap = (self.embedder.max_tokens - 2) if self.embedder.max_tokens else 8000
            self._chunker = SentenceChunker(
                self.embedder.count_tokens,
                chunk_tokens=min(self.settings.chunk_tokens, cap),
                overlap=self.settings.chunk_overlap,
                max_tokens=cap,
            )
        return self._chunker

    def ingest(self, paths: list[Path | str], progress: Progress | None = None) -> IngestReport:
        """Load and index files or folders; bad files are reported, good ones stored."""
        return ingest_paths(
            [Path(p) for p in paths],
            store=self.store,
            embedder=self.embedder,
            chunker=self.chunker,
            max_bytes=int(self.settings.max_file_mb * 1024 * 1024),
            progress=progress,
        )

    def ingest_documents(
        self, docs: list[Document], progress: Progress | None = None, force: bool = False
    ) -> IngestReport:
        """Index already-loaded documents (evaluation corpora, reindex)."""
        return ingest_documents(
            docs,
            store=self.store,
            embedder=self.embedder,
            chunker=self.chunker,
            progress=progress,
            force=force,
        )

    def sources(self) -> list[SourceInfo]:
        """Stored reports, sorted by source name."""
        return [info for _, info in sorted(self.store.committed().items())]

    def document(self, source: str) -> Document | None:
        """One stored report with its full text (what citations point into)."""
        return self.store.document(source)

    def forget(self, source: str) -> bool:
        """Remove a report and its chunks."""
        return self.store.forget(source)

    def reindex(self, progress: Progress | None = None) -> IngestReport:
        """Re-chunk and re-embed every stored report with the configured embedder."""
        docs = self.store.documents()
        self.store.reset_chunks()
        self.retriever = Retriever(self.store, self.embedder, self.settings)
        self._answerer = self._summarizer = None
        return self.ingest_documents(docs, progress=progress, force=True)

    # --- questions and briefs ----------------------------------------------------------

    def search(
        self, query: str, *, top_k: int | None = None, filters: Filters | None = None, method: str = "hybrid"
    ) -> list[Hit]:
        """Retrieved passages with scores and spans."""
        return self.retriever.search(query, top_k=top_k, filters=filters, method=method)

    @property
    def answerer(self) -> Answerer:
        if self._answerer is None:
            from rag.answer.answerer import Answerer

            self._answerer = Answerer(
                self.retriever, self.embedder, self.settings, chat=self.chat, token_counter=self.token_counter
            )
        return self._answerer

    @property
    def summarizer(self) -> Summarizer:
        if self._summarizer is None:
            from rag.summarize.summarizer import Summarizer

            self._summarizer = Summarizer(
                self.embedder, self.chat, self.token_counter, settings=self.settings
            )
        return self._summarizer

    def ask(
        self,
        question: str,
        *,
        history: list[dict] | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
    ) -> Answer:
        """A cited answer, or an honest abstention."""
        return self.answerer.ask(question, history=history, top_k=top_k, filters=filters)

    def ask_stream(
        self,
        question: str,
        *,
        history: list[dict] | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
    ) -> Iterator[Event]:
        """Status lines and answer text as they come, then ("answer", Answer) (see ``Answerer.ask_stream``)."""
        return self.answerer.ask_stream(question, history=history, top_k=top_k, filters=filters)

    def select_documents(self, filters: Filters | None = None) -> list[Document]:
        """The stored reports a brief covers: chosen sources and/or a date range (all when no filter)."""
        filters = filters or Filters()
        infos = self.sources()
        chosen = [
            i.source
            for i in infos
            if (not filters.sources or i.source in filters.sources)
            and (not (filters.date_from or filters.date_to) or filters.date_matches(i.date))
        ]
        return self.store.documents(chosen)

    def brief(
        self, filters: Filters | None = None, *, words: int | None = None, progress: Progress | None = None
    ) -> Brief:
        """A one-paragraph cited brief of the selected reports."""
        return self.summarizer.brief(self._docs_or_raise(filters), words=words, progress=progress)

    def summary(self, filters: Filters | None = None, *, progress: Progress | None = None) -> Summary:
        """The structured summary of the selected reports."""
        return self.summarizer.summary(self._docs_or_raise(filters), progress=progress)

    def _docs_or_raise(self, filters: Filters | None) -> list[Document]:
        docs = self.select_documents(filters)
        if not docs:
            what = (filters or Filters()).describe()
            raise RagError(
                f"No stored report matches {what}.", hint="Check `rag sources` for names and dates."
            )
        return docs

    def status(self) -> dict[str, Any]:
        """What the page's status panel and `rag status` show."""
        from urllib.parse import urlparse

        endpoint = None
        if self.chat is not None:
            endpoint = urlparse(self.settings.openai_base_url or "https://api.openai.com/v1").hostname
        return {
            "mode": self.mode,
            "llm_model": self.settings.llm_model if self.chat is not None else None,
            "llm_endpoint": endpoint,
            "embedder": self.embedder.name,
            "dimension": self.embedder.dim,
            "store": self.store.location,
            "server_mode": self.settings.server_mode,
            "reports": len(self.store.committed()),
            "chunks": self.store.count_chunks(),
            "store_bytes": _folder_size(Path(self.settings.store)) if not self.settings.server_mode else None,
            "token_note": self.token_counter.note if self.chat is not None and self.token_counter else None,
        }


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def build_pipeline(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    chat: ChatModel | None = None,
    store: Store | None = None,
    reindex: bool = False,
) -> Pipeline:
    """Build every collaborator from ``settings`` (the one composition root).

    With ``reindex=True`` a store built by another embedder is opened for rebuilding
    instead of refused (its reports' texts are kept; its chunks are re-embedded).
    """
    from rag.adapters.chroma import open_chroma_store
    from rag.adapters.embedders import build_embedder
    from rag.adapters.openai_chat import build_chat_model, build_openai_client
    from rag.adapters.tokens import lazy_token_counter

    settings = settings or Settings.from_env()
    client_ai = build_openai_client(settings) if settings.llm_enabled else None
    if embedder is None:
        embedder = build_embedder(settings, client=client_ai, lazy=True)
    if chat is None and client_ai is not None:
        chat = build_chat_model(settings, client=client_ai)
    if store is None:
        store = open_chroma_store(settings, embedder.name, embedder.dim, rebuild=reindex)
    counter = lazy_token_counter(settings)
    return Pipeline(settings, embedder, store, Retriever(store, embedder, settings), chat, counter)
