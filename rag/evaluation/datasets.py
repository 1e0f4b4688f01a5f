"""Test cases and corpora for the evaluation harness: the JSONL formats, and loaders that
turn the team's shared public datasets into them at run time (nothing is copied into the repo).

Formats are documented in eval/README.md. Spans are ``[start, end)`` offsets into the
corpus record's ``text``, which the loaders store already normalised with
``rag.nlp.text.normalize`` so that the spans stay valid after the pipeline loads the text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypedDict

from rag.errors import RagError
from rag.nlp.text import find_quote, normalize

log = logging.getLogger(__name__)

DEV_BUCKET = 0  # sha256(question) mod 5 == DEV_BUCKET -> dev (20%), else test


class DatasetError(RagError):
    """A test-case or corpus file is malformed, or a shared dataset is missing."""


class EvidenceItem(TypedDict):
    """Gold evidence: a span of a corpus record (start/end None when not located) and its text."""

    source: str
    start: int | None
    end: int | None
    text: str


@dataclass
class TestCase:
    """One evaluation case: a question ("qa") or a document to brief ("brief")."""

    __test__ = False  # not a pytest test class

    id: str
    question: str = ""
    answers: list[str] = field(default_factory=list)
    answerable: bool = True
    evidence: list[EvidenceItem] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)  # slicing keys, e.g. {"type": "inference_query"}
    kind: Literal["qa", "brief"] = "qa"
    document: str = ""  # brief cases: the text to summarise
    sources: list[str] = field(default_factory=list)  # brief cases over corpus records
    references: dict[str, str] = field(default_factory=dict)  # brief cases: {"expert": ..., "original": ...}
    key_facts: list[str] = field(default_factory=list)  # brief cases: facts a good brief states
    baselines: dict[str, str] = field(default_factory=dict)  # published system outputs, e.g. {"gpt3": ...}
    max_words: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestCase:
        """Build from a JSONL row; unknown keys, a missing id or a bad kind raise DatasetError.

        ``references`` may also be a list of strings: they are named "ref1", "ref2", ...
        """
        data = dict(data)
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise DatasetError(f"unknown test-case field(s): {', '.join(sorted(unknown))}")
        if not data.get("id"):
            raise DatasetError("test case without an id")
        if data.get("kind", "qa") not in ("qa", "brief"):
            raise DatasetError(f"test case {data['id']}: kind must be 'qa' or 'brief', not {data['kind']!r}")
        for ev in data.get("evidence", []):
            if "source" not in ev or "text" not in ev:
                raise DatasetError(f"test case {data['id']}: evidence items need 'source' and 'text'")
            ev.setdefault("start", None)
            ev.setdefault("end", None)
        refs = data.get("references")
        if isinstance(refs, list):
            data["references"] = {f"ref{i}": r for i, r in enumerate(refs, start=1)}
        return cls(**data)


@dataclass
class CorpusRecord:
    """One document of an evaluation corpus."""

    source: str  # unique, stable name (becomes Document.source)
    title: str
    text: str
    date: str | None = None  # ISO YYYY-MM-DD
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. outlet, url, category

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- JSONL --------------------------------------------------------------------------------


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON Lines file; blank lines skipped; a bad line raises DatasetError with its number."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any] | TestCase | CorpusRecord]) -> int:
    """Write rows (dicts or dataclasses) one JSON object per line, UTF-8; returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            data = row if isinstance(row, dict) else row.to_dict()
            fh.write(json.dumps(data, ensure_ascii=False) + "\n")
            n += 1
    return n


def load_cases(path: str | Path) -> list[TestCase]:
    """Test cases from a JSONL file; duplicate ids raise DatasetError."""
    cases = [TestCase.from_dict(row) for row in read_jsonl(path)]
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise DatasetError(f"{path}: duplicate test-case id {case.id!r}")
        seen.add(case.id)
    return cases


def load_corpus(path: str | Path) -> list[CorpusRecord]:
    """Corpus records from a JSONL file."""
    return [CorpusRecord(**row) for row in read_jsonl(path)]


def unresolved_evidence(cases: Iterable[TestCase]) -> int:
    """How many evidence items could not be located in their document (``start`` is None)."""
    return sum(1 for c in cases for e in c.evidence if e["start"] is None)


def split_of(key: str) -> str:
    """Fixed dev/test assignment: "dev" iff int(sha256(key)) mod 5 == 0 (about 20%), else "test"."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return "dev" if int(digest, 16) % 5 == DEV_BUCKET else "test"


def _datasets_dir(shared_dir: str | Path, name: str) -> Path:
    shared = Path(shared_dir)
    folder = shared / "datasets" / name if (shared / "datasets").is_dir() else shared / name
    if not folder.is_dir():
        raise DatasetError(
            f"shared dataset {name!r} not found at {folder}",
            hint="Point shared_dir at the team's shared folder (the one holding datasets/).",
        )
    return folder


def _slug(text: str, n: int = 48) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n].rstrip("-")


# --- MultiHop-RAG -------------------------------------------------------------------------


def _multihop_record(article: dict[str, Any]) -> CorpusRecord:
    title = article["title"]
    source = f"multihop/{_slug(title)}-{hashlib.sha1(title.encode()).hexdigest()[:6]}.txt"
    meta = {k: article.get(k) for k in ("source", "url", "category", "author", "published_at")}
    date = (article.get("published_at") or "")[:10] or None
    return CorpusRecord(
        source=source,
        title=title,
        text=normalize(article["body"]),
        date=date,
        meta={"outlet": meta.pop("source"), **meta},
    )


def _multihop_evidence(item: dict[str, Any], record: CorpusRecord) -> EvidenceItem:
    fact = normalize(item["fact"])
    span = find_quote(record.text, fact)
    if span is None:
        return EvidenceItem(source=record.source, start=None, end=None, text=fact)
    return EvidenceItem(source=record.source, start=span[0], end=span[1], text=record.text[span[0] : span[1]])


def multihop_rag(
    shared_dir: str | Path, split: Literal["dev", "test", "all"] = "dev"
) -> tuple[list[CorpusRecord], list[TestCase]]:
    """MultiHop-RAG: the 609 articles as corpus records and its queries as test cases.

    Split: ``split_of(query text)`` (the dataset has no ids). Case id: "mh-" + 10 hex of
    sha256(query). Evidence: each gold fact mapped to its article by exact title, span
    found in the normalised body (exact, folded, then whitespace-insensitive); a fact
    not found keeps start/end None (see ``unresolved_evidence``). Null queries are
    ``answerable=False`` with no evidence. The whole corpus is returned for every split.
    """
    folder = _datasets_dir(shared_dir, "multihop-rag")
    articles = json.loads((folder / "corpus.json").read_text(encoding="utf-8"))
    queries = json.loads((folder / "MultiHopRAG.json").read_text(encoding="utf-8"))
    corpus = [_multihop_record(a) for a in articles]
    by_title = {r.title: r for r in corpus}
    cases = []
    for q in queries:
        which = split_of(q["query"])
        if split != "all" and which != split:
            continue
        evidence = [_multihop_evidence(e, by_title[e["title"]]) for e in q["evidence_list"]]
        cases.append(
            TestCase(
                id="mh-" + hashlib.sha256(q["query"].encode("utf-8")).hexdigest()[:10],
                question=q["query"],
                answers=[q["answer"]],
                answerable=q["question_type"] != "null_query",
                evidence=evidence,
                tags={"type": q["question_type"], "n_evidence": len(evidence), "split": which},
            )
        )
    missing = unresolved_evidence(cases)
    if missing:
        log.info("MultiHop-RAG %s: %d evidence facts not located in their article", split, missing)
    return corpus, cases


# --- SQuAD --------------------------------------------------------------------------------


def _remap_span(raw: str, text: str, answer: str, start: int) -> tuple[int, int] | None:
    """Span of ``answer`` in the normalised ``text``: the occurrence nearest the raw offset."""
    if raw == text and text[start : start + len(answer)] == answer:
        return start, start + len(answer)
    needle = normalize(answer)
    hits = [m.start() for m in re.finditer(re.escape(needle), text)] if needle else []
    if hits:
        best = min(hits, key=lambda i: abs(i - start))
        return best, best + len(needle)
    return find_quote(text, needle)


def _squad_sample(data: list[dict[str, Any]], limit: int | None, seed: int) -> set[str] | None:
    if limit is None:
        return None
    ids = [qa["id"] for a in data for p in a["paragraphs"] for qa in p["qas"]]
    return set(random.Random(seed).sample(ids, min(limit, len(ids))))


def squad(
    shared_dir: str | Path,
    version: Literal["1.1", "2.0"] = "1.1",
    limit: int | None = None,
    seed: int = 0,
    corpus_scope: Literal["articles", "paragraphs", "all"] = "articles",
) -> tuple[list[CorpusRecord], list[TestCase]]:
    """SQuAD dev: paragraphs as corpus records, questions as cases with answer-span evidence.

    ``limit`` keeps a seeded random sample of questions (file order kept). The corpus
    holds every paragraph of the articles those questions come from (``"articles"``),
    only their own paragraphs (``"paragraphs"``) or the whole dev set (``"all"``).
    v2.0 unanswerable questions are ``answerable=False`` with no answers or evidence.
    Source names look like ``squad-1.1/Super_Bowl_50/p003.txt``.
    """
    folder = _datasets_dir(shared_dir, "squad-dev")
    data = json.loads((folder / f"dev-v{version}.json").read_text(encoding="utf-8"))["data"]
    keep = _squad_sample(data, limit, seed)
    corpus: list[CorpusRecord] = []
    cases: list[TestCase] = []
    for article in data:
        records, article_cases = _squad_article(article, version, keep)
        if corpus_scope == "all" or article_cases:
            used = {c.tags["paragraph"] for c in article_cases}
            corpus.extend(r for r in records if corpus_scope != "paragraphs" or r.source in used)
        cases.extend(article_cases)
    return corpus, cases


def _squad_article(
    article: dict[str, Any], version: str, keep: set[str] | None
) -> tuple[list[CorpusRecord], list[TestCase]]:
    title = article["title"]
    records, cases = [], []
    for i, para in enumerate(article["paragraphs"]):
        source = f"squad-{version}/{title}/p{i:03d}.txt"
        text = normalize(para["context"])
        records.append(CorpusRecord(source=source, title=f"{title.replace('_', ' ')} ({i + 1})", text=text))
        for qa in para["qas"]:
            if keep is not None and qa["id"] not in keep:
                continue
            answers = [a["text"] for a in qa["answers"]]
            evidence: dict[tuple[Any, ...], EvidenceItem] = {}
            for a in qa["answers"]:
                span = _remap_span(para["context"], text, a["text"], a["answer_start"])
                start, end = span if span else (None, None)
                quote = text[start:end] if span else a["text"]  # the stored text, whitespace normalised
                item = EvidenceItem(source=source, start=start, end=end, text=quote)
                evidence.setdefault((start, end, a["text"]), item)
            kind = "answerable" if answers else "unanswerable"
            cases.append(
                TestCase(
                    id=qa["id"],
                    question=qa["question"],
                    answers=answers,
                    answerable=bool(answers),
                    evidence=list(evidence.values()),
                    tags={"type": kind, "article": title, "paragraph": source},
                )
            )
    return records, cases


# --- summarisation ------------------------------------------------------------------------


def element_aware(shared_dir: str | Path, dataset: Literal["cnndm", "xsum"] = "cnndm") -> list[TestCase]:
    """The element-aware CNN/DM-200 or XSum-200 set as brief cases.

    ``document`` is the article (``src``; partly lower-cased and tokenised, XSum without
    its first sentence), ``references`` = {"expert": element-aware summary, "original":
    dataset reference with CNN/DM's ".." highlight separators turned into "."},
    ``baselines`` = {"gpt3": zero-shot GPT-3, "gpt3_cot": SumCoT}.
    """
    folder = _datasets_dir(shared_dir, "news-summ-element-aware")
    items = json.loads((folder / f"{dataset}_element_aware.json").read_text(encoding="utf-8"))[dataset]
    return [
        TestCase(
            id=f"{dataset}-{x['id']}",
            kind="brief",
            document=x["src"],
            references={
                "expert": x["element-aware_summary"],
                "original": x["original_summary"].replace("..", "."),
            },
            baselines={"gpt3": x["gpt3_summary"], "gpt3_cot": x["gpt3_cot_summary"]},
            tags={"type": dataset, "lowercased": x["src"] == x["src"].lower()},
        )
        for x in items
    ]


def corpus_by_source(corpus: Sequence[CorpusRecord]) -> dict[str, CorpusRecord]:
    """Index corpus records by source name; duplicate names raise DatasetError."""
    out: dict[str, CorpusRecord] = {}
    for record in corpus:
        if record.source in out:
            raise DatasetError(f"duplicate corpus source {record.source!r}")
        out[record.source] = record
    return out
