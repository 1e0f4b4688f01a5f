"""Plain data passed between pipeline stages: every shared dataclass lives here.

Spans are ``[start, end)`` character offsets into ``Document.text``, the stored,
normalised text of a report; ``Document.text[start:end]`` is always the quote.
This module imports nothing of Dossier but the pure date helper, so any stage,
adapter or edge may use it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NotRequired, TypedDict

from rag.nlp.dates import date_ord

Progress = Callable[[int, int, str], None]
"""The one progress callback: ``progress(done, total, label)``."""


@dataclass
class Document:
    """One report after loading and normalisation."""

    source: str  # stable name: path relative to the ingest root, e.g. "india-russia.txt"
    title: str
    text: str  # normalised text; every span points into it
    date: str | None = None  # ISO date (YYYY-MM-DD) of publication, when the report carries one
    date_note: str = "no publication date found"  # how the date was found, or that none was
    format: str = "txt"
    doc_id: str = ""  # content hash of ``text`` (filled by ``rag.ingest.loading``)
    publisher: str | None = None  # the outlet or organisation that published it, e.g. "TechCrunch"
    author: str | None = None
    page_starts: list[int] = field(default_factory=list)  # paged formats: offset where page i+1 starts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset`` (None for formats without pages)."""
        return page_of(offset, self.page_starts)


def page_of(offset: int, page_starts: Sequence[int]) -> int | None:
    """1-based page of ``offset`` given the offsets where pages start (None when there are none)."""
    return bisect_right(page_starts, offset) or 1 if page_starts else None


@dataclass
class Chunk:
    """A passage of a document: ``text == document.text[start:end]``."""

    chunk_id: str
    doc_id: str
    source: str
    index: int
    start: int
    end: int
    text: str
    title: str = ""
    date: str | None = None
    publisher: str | None = None
    page: int | None = None  # page of ``start`` (paged formats only)
    page_breaks: list[int] = field(default_factory=list)  # offsets in (start, end) where a new page starts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page of an offset inside this chunk (None for formats without pages)."""
        if self.page is None:
            return None
        return self.page + bisect_right(self.page_breaks, offset)


@dataclass
class Hit:
    """A retrieved chunk with its fused score and the ranks that made it."""

    chunk: Chunk
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense_score: float | None = None
    lexical_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.chunk.to_dict()
        d.update(
            score=self.score,
            dense_rank=self.dense_rank,
            lexical_rank=self.lexical_rank,
            dense_score=self.dense_score,
            lexical_score=self.lexical_score,
        )
        return d


@dataclass
class Citation:
    """An exact span of a stored document that a statement rests on."""

    key: int  # 1-based marker shown in the answer, e.g. [1]
    source: str
    doc_id: str
    chunk_id: str
    start: int
    end: int
    quote: str  # exactly document.text[start:end]
    title: str = ""
    date: str | None = None
    page: int | None = None  # page of ``start`` in a paged report (PDF), shown as "p. 3"
    publisher: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SentenceCheck:
    """One answer or brief sentence, the citations it rests on and the checker's verdict."""

    text: str
    citations: list[int] = field(default_factory=list)  # Citation.key values
    supported: bool = False
    problems: list[str] = field(default_factory=list)  # e.g. 'number "42" not in cited passages'
    overlap: float = 0.0  # share of the sentence's content words found in its cited passages

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """The result of ``ask``: text, citations, per-sentence verdicts, and how it was made."""

    question: str
    answer: str
    abstained: bool
    mode: str  # "extractive" or "llm"
    citations: list[Citation] = field(default_factory=list)
    sentences: list[SentenceCheck] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)  # retrieved passages (closest ones when abstaining)
    standalone_question: str | None = None  # follow-ups rewritten before retrieval
    notice: str | None = None  # e.g. "LLM failed (...); showing the extractive answer"
    searched: str = ""  # what was searched, said when abstaining
    usage: dict[str, int] = field(default_factory=dict)  # prompt/completion tokens in LLM mode
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.answer,
            "abstained": self.abstained,
            "mode": self.mode,
            "notice": self.notice,
            "searched": self.searched,
            "citations": [c.to_dict() for c in self.citations],
            "sentences": [s.to_dict() for s in self.sentences],
            "passages": [h.to_dict() for h in self.passages],
            "usage": self.usage,
            "timings": self.timings,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval or a brief to some sources and/or a publication date range (inclusive)."""

    sources: tuple[str, ...] | None = None
    date_from: str | None = None
    date_to: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.sources) or bool(self.date_from) or bool(self.date_to)

    def matches(self, chunk: Chunk) -> bool:
        if self.sources and chunk.source not in self.sources:
            return False
        return self.date_matches(chunk.date) if (self.date_from or self.date_to) else True

    def date_matches(self, date: str | None) -> bool:
        """Whether a publication date lies in the range (an undated report never does)."""
        d = date_ord(date)
        if d is None:
            return False
        lo, hi = date_ord(self.date_from), date_ord(self.date_to)
        return not ((lo is not None and d < lo) or (hi is not None and d > hi))

    def describe(self) -> str:
        parts = []
        if self.sources:
            parts.append("reports " + ", ".join(self.sources))
        if self.date_from or self.date_to:
            parts.append(f"dated {self.date_from or '…'} to {self.date_to or '…'}")
        return "; ".join(parts) if parts else "all reports"


@dataclass
class SourceInfo:
    """A stored report as listed by ``rag sources``."""

    source: str
    title: str
    date: str | None
    date_note: str
    doc_id: str
    chunks: int
    chars: int
    format: str
    ingested_at: float
    publisher: str | None = None
    author: str | None = None
    pages: int = 0  # pages of a paged report (0 for other formats)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class IngestReport:
    """What an ingest did, file by file."""

    added: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    @property
    def chunks(self) -> int:
        return sum(item.get("chunks", 0) for item in self.added + self.updated)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "repaired": self.repaired,
        }


@dataclass
class ChatResult:
    """One chat completion: its text, token usage, the model that answered and why it stopped."""

    text: str
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    finish_reason: str | None = None


# --- briefs and structured summaries ---------------------------------------------------------


class SummaryCitation(TypedDict):
    """A cited span of a summarised report: ``quote == document.text[start:end]``."""

    source: str
    start: int
    end: int
    quote: str


class Statement(TypedDict):
    """A cited sentence (bottom line, key point, agreement)."""

    text: str
    citations: list[SummaryCitation]


class PersonItem(TypedDict):
    name: str
    title: str | None
    affiliation: str | None
    citations: list[SummaryCitation]


class NamedItem(TypedDict):
    """An organisation or a place."""

    name: str
    citations: list[SummaryCitation]


class TimelineItem(TypedDict):
    date: str  # YYYY-MM-DD, YYYY-MM or --MM-DD
    date_text: str
    event: str
    citations: list[SummaryCitation]


class FigureItem(TypedDict):
    value: str
    what: str | None
    citations: list[SummaryCitation]


class OpenQuestion(TypedDict):
    question: str
    citations: NotRequired[list[SummaryCitation]]


class AgreementPoint(TypedDict):
    """A point two or more reports make alike."""

    text: str
    sources: list[str]
    citations: list[SummaryCitation]


class Agreement(TypedDict):
    """What several reports say alike, and what each alone adds (by source)."""

    agree: list[AgreementPoint]
    new: dict[str, list[Statement]]


class SummarySource(TypedDict):
    source: str
    title: str
    date: str | None
    doc_id: str


class Unfilled(TypedDict):
    field: str
    reason: str


class Summary(TypedDict):
    """The structured summary, as documented by ``prompts/summary.schema.json``.

    A TypedDict, so it is typed for the checker and its JSON (``json.dumps(summary)``) is the
    documented form, key for key.
    """

    title: str
    bottom_line: Statement
    key_points: list[Statement]
    people: list[PersonItem]
    organisations: list[NamedItem]
    places: list[NamedItem]
    timeline: list[TimelineItem]
    agreements: list[Statement]
    figures: list[FigureItem]
    open_questions: list[OpenQuestion]
    sources: list[SummarySource]
    mode: str
    notice: str | None
    unfilled: list[Unfilled]
    agreement: Agreement


@dataclass
class Brief:
    """A one-paragraph brief with its citations and per-sentence checks."""

    text: str
    sentences: list[SentenceCheck]
    citations: list[Citation]
    word_count: int
    word_limit: int
    mode: str
    sources: list[str]
    notice: str | None = None
    # {"agree": [...], "new": {source: [...]}} for several reports ({} for one)
    agreement: Agreement | dict[str, Any] = field(default_factory=dict)
    dropped: list[SentenceCheck] = field(default_factory=list)  # LLM sentences removed as unsupported

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON export)."""
        return {
            "text": self.text,
            "word_count": self.word_count,
            "word_limit": self.word_limit,
            "mode": self.mode,
            "sources": self.sources,
            "notice": self.notice,
            "agreement": self.agreement,
            "sentences": [s.to_dict() for s in self.sentences],
            "citations": [c.to_dict() for c in self.citations],
            "dropped": [s.to_dict() for s in self.dropped],
        }
