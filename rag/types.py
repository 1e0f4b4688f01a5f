"""Plain data passed between pipeline stages.

Spans are ``[start, end)`` character offsets into ``Document.text``, the stored,
normalised text of a report; ``Document.text[start:end]`` is always the quote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
