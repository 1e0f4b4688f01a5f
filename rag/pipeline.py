"""The composition root: the only place that builds clients and wires the stages.

``build_pipeline(settings)`` returns a ``Pipeline`` whose methods are what the
CLI, the page and the evaluation harness call. Collaborators can be passed in
(tests share one embedder across many pipelines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import EmbedderMismatchError, StoreError
from rag.ingest.indexing import IngestReport, Progress, ingest_documents, ingest_paths
from rag.retrieve.retriever import Filters, Retriever
from rag.adapters.chroma import SourceInfo, Store
from rag.types import Answer, Document, Hit


def build_chroma_client(settings: Settings) -> tuple[Any, str]:
    """A Chroma client (embedded folder or server) and a location string for messages."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.server_mode:
        location = f"http://{settings.chroma_host}:{settings.chroma_port}"
        try:
            client = chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
            client.heartbeat()
        except Exception as exc:
            raise StoreError(
                f"Cannot reach the Chroma server at {location}: {exc}",
                hint=f"Start it with `chroma run --path DIR --host {settings.chroma_host} "
                f"--port {settings.chroma_port}` (DIR: its data folder), or unset RAG_CHROMA_HOST "
                "to use the local folder store.",
            ) from exc
        return client, location
    path = Path(settings.store)
    try:
        path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as exc:
        raise StoreError(
            f"Cannot open the store folder {path}: {exc}", hint="Check RAG_STORE / --store."
        ) from exc
    return client, str(path)


@dataclass
class Pipeline:
    """Every operation of Dossier over one store, one embedder and optionally one LLM."""

    settings: Settings
    embedder: Any
    store: Store
    chunker: Any
    retriever: Retriever
    chat: Any = None
    token_counter: Any = None
    _answerer: Any = field(default=None, repr=False)
    _summarizer: Any = field(default=None, repr=False)

    @property
    def mode(self) -> str:
        """'llm' when an LLM is configured, else 'extractive'."""
        return "llm" if self.chat is not None else "extractive"

    # --- library ------------------------------------------------------------------

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
        self.store.drop_chunks()
        self.store = _open_store(self.store.client, self.settings, self.embedder, self.store.location)
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
    def answerer(self) -> Any:
        if self._answerer is None:
            from rag.answer.answerer import Answerer

            self._answerer = Answerer(
                self.retriever, self.embedder, self.settings, chat=self.chat, token_counter=self.token_counter
            )
        return self._answerer

    @property
    def summarizer(self) -> Any:
        if self._summarizer is None:
            from rag.summarize.summarizer import Summarizer

            self._summarizer = Summarizer(
                self.embedder, self.chat, self.token_counter, settings=self.settings
            )
        return self._summarizer

    def ask(self, question: str, **kwargs: Any) -> Answer:
        """A cited answer, or an honest abstention."""
        return self.answerer.ask(question, **kwargs)

    def select_documents(self, filters: Filters | None = None) -> list[Document]:
        """The stored reports a brief covers: chosen sources and/or a date range (all when no filter)."""
        filters = filters or Filters()
        infos = self.sources()
        chosen = [
            i.source
            for i in infos
            if (not filters.sources or i.source in filters.sources)
            and (not (filters.date_from or filters.date_to) or _in_range(i.date, filters))
        ]
        return self.store.documents(chosen)

    def brief(self, filters: Filters | None = None, *, words: int | None = None, progress=None) -> Any:
        """A one-paragraph cited brief of the selected reports."""
        return self.summarizer.brief(self._docs_or_raise(filters), words=words, progress=progress)

    def summary(self, filters: Filters | None = None, *, progress=None) -> dict:
        """The structured summary of the selected reports."""
        return self.summarizer.summary(self._docs_or_raise(filters), progress=progress)

    def _docs_or_raise(self, filters: Filters | None) -> list[Document]:
        from rag.errors import RagError

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
            "token_note": getattr(self.token_counter, "note", None) if self.token_counter else None,
        }


def _in_range(date: str | None, filters: Filters) -> bool:
    from rag.adapters.chroma import date_ord

    d = date_ord(date)
    lo, hi = date_ord(filters.date_from), date_ord(filters.date_to)
    return d is not None and (lo is None or d >= lo) and (hi is None or d <= hi)


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _open_store(client: Any, settings: Settings, embedder: Any, location: str) -> Store:
    return Store(
        client, prefix=settings.collection, embedder_name=embedder.name, dim=embedder.dim, location=location
    )


def build_pipeline(
    settings: Settings | None = None, *, embedder: Any = None, chat: Any = None, reindex: bool = False
) -> Pipeline:
    """Build every collaborator from ``settings`` (the one composition root).

    With ``reindex=True`` a store built by another embedder is opened for rebuilding
    instead of refused (its reports' texts are kept; its chunks are re-embedded).
    """
    from rag.ingest.chunking import Chunker
    from rag.adapters.embedders import build_embedder
    from rag.adapters.openai_chat import build_chat_model, build_openai_client
    from rag.adapters.tokens import TokenCounter

    settings = settings or Settings.from_env()
    client_ai = build_openai_client(settings) if settings.llm_enabled else None
    if embedder is None:
        embedder = build_embedder(settings, client=client_ai)
    if chat is None and client_ai is not None:
        chat = build_chat_model(settings, client=client_ai)
    client, location = build_chroma_client(settings)
    try:
        store = _open_store(client, settings, embedder, location)
    except EmbedderMismatchError:
        if not reindex:
            raise
        client.delete_collection(f"{settings.collection}_chunks")
        store = _open_store(client, settings, embedder, location)
    cap = (embedder.max_tokens - 2) if embedder.max_tokens else 8000
    chunker = Chunker(
        embedder.count_tokens,
        chunk_tokens=min(settings.chunk_tokens, cap),
        overlap=settings.chunk_overlap,
        max_tokens=cap,
    )
    counter = TokenCounter(settings.llm_model) if chat is not None else None
    return Pipeline(settings, embedder, store, chunker, Retriever(store, embedder, settings), chat, counter)
