"""Extractive answers: the retrieved sentences that best answer the question, cited.

Used when no LLM is configured, and as the fallback when an LLM answer cannot be
verified. Candidate sentences come from the retrieved passages only; each is
scored by a mix of dense similarity to the question, weighted overlap with the
question's content words (names and numbers weigh more), a small passage-rank
prior and a bonus when it holds the kind of thing the question asks for (a
person for "who", a date for "when", a number for "how many", a place for
"where"). The answer is the best one to ``answer_sentences`` of them, near
duplicates removed; it abstains when the question's key terms are missing from
every passage or the best score is too low.

The constants below were calibrated on dev splits (SQuAD 2.0 dev, MultiHop-RAG);
``bench/calibrate_extractive.py`` reproduces the numbers quoted next to them.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.claims import check_sentence, extract_facts
from rag.config import Settings
from rag.prompts import ABSTAIN
from rag.text import Sentence, containment, content_words, fold, shingles, split_sentences, stem, words
from rag.types import Answer, Citation, Hit, SentenceCheck

# --- scoring weights (sum to 1; tuned for sentence-selection accuracy on SQuAD dev) ----------------
W_DENSE = 0.45  # cosine similarity of question and sentence embeddings
W_LEXICAL = 0.35  # weighted share of the question's content words found in the sentence
W_TYPE = 0.12  # the sentence holds a new item of the expected answer type
W_RANK = 0.08  # prior from the passage's retrieval rank (1.0 for the first passage)
KEY_TERM_WEIGHT = 2.0  # weight of a name or number in the question, relative to an ordinary content word
FRAGMENT_PENALTY = 0.05  # sentences cut by a chunk boundary (start in lower case, no final stop)
# --- abstention ------------------------------------------------------------------------------
MIN_SCORE = 0.33  # abstain when the best candidate scores below this
MIN_KEY_COVERAGE = 0.75  # abstain when fewer of the question's key terms occur in any passage
# --- selection ---------------------------------------------------------------------------------
KEEP_MARGIN = 0.08  # a further sentence is kept only when it scores within this of the best one
DUPLICATE_CONTAINMENT = 0.6  # folded 3-gram containment above which two sentences count as one
MIN_WORDS, MAX_WORDS = 4, 90  # shorter sentences say too little; longer ones are lists or tables
CACHE_CHUNKS = 4096  # chunks whose sentence embeddings are kept (per answerer)

# Words that shape a question but never its answer.
_QUESTION_FILLER = frozenset(
    "name named called happen happened kind type many much mean really tell know describe explain".split()
)
_ORG_WORDS = frozenset(
    """group commission ministry committee council plant company corporation inc ltd bank agency department
    office union association institute university party army navy force forces court parliament government
    board fund organisation organization working""".split()
)
_TITLE_WORDS = frozenset(
    """first second deputy chief director secretary minister president vice prime general lt gen col maj
    mr mrs ms dr prof sir head senior junior joint additional executive officer chairman chairperson""".split()
)
_PLACE_PREP = re.compile(
    r"\b(?:in|at|to|from|near|into|inside|outside|across|visited|reached)\s+(?:the\s+)?"
    r"([A-Z][\w'\u2019-]*(?:\s+[A-Z][\w'\u2019-]*)*)"
)
_YEAR = re.compile(r"\b(?:1[6-9]|20)\d{2}\b")
_WEEKDAY = re.compile(r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today)\b", re.I)
_NUMBER_WORD = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|billion|dozen|dozens|hundreds|thousands|millions)\b", re.I
)


@dataclass
class Question:
    """What the scorer needs to know about a question."""

    text: str
    terms: dict[str, float]  # stemmed content word -> weight
    key_terms: dict[str, str]  # stemmed token of a name or number -> the word as asked (passages must mention it)
    answer_type: str | None  # "person", "date", "number", "place" or None


@dataclass
class Candidate:
    """A sentence of a retrieved passage, its document span and its score."""

    hit: Hit
    rank: int  # 0-based rank of its passage
    sentence: Sentence  # span in document offsets
    vector: np.ndarray
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.sentence.text


@dataclass
class Ranking:
    """Candidates best first, and why the answer abstains (None when it does not)."""

    question: Question
    candidates: list[Candidate]
    abstain_reason: str | None
    key_coverage: float


def analyse_question(question: str) -> Question:
    """Content words with weights, key terms and the expected answer type."""
    facts = extract_facts(question)
    key = {stem(w): w for n in facts.names + facts.numbers + facts.dates for w in words(fold(n))
           if w not in _QUESTION_FILLER and len(w) > 1}
    terms: dict[str, float] = {}
    for w in content_words(fold(question)):
        s = stem(w)
        if w in _QUESTION_FILLER or s in _QUESTION_FILLER:
            continue
        terms[s] = KEY_TERM_WEIGHT if s in key else 1.0
    return Question(question, terms, key, answer_type(question))


def answer_type(question: str) -> str | None:
    """The kind of thing a question asks for, from its wh-word."""
    q = fold(question).strip()
    if re.search(r"\bhow (?:many|much|long|old|far|often)\b|\bwhat (?:number|percentage|share|amount)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (?:year|date|day|month|time)\b|\bwhich (?:year|date|day|month)\b", q):
        return "date"
    if re.search(r"\bwhere\b|\bwhat (?:city|country|place|venue|location)\b|\bwhich (?:city|country|place)\b", q):
        return "place"
    if re.search(r"\bwho(?:m|se)?\b", q):
        return "person"
    return None


def has_answer_type(kind: str | None, text: str, question: Question) -> float:
    """1.0 when ``text`` holds a new item of the expected type, 0.5 for a weaker sign, else 0."""
    if kind is None:
        return 0.0
    asked = set(question.terms)
    facts = extract_facts(text)

    def new(item: str) -> bool:
        return any(stem(w) not in asked for w in words(fold(item)))

    if kind == "number":
        if any(new(n) for n in facts.numbers):
            return 1.0
        return 0.5 if _NUMBER_WORD.search(text) else 0.0
    if kind == "date":
        if any(new(d) for d in facts.dates) or any(new(y) for y in _YEAR.findall(text)):
            return 1.0
        return 0.5 if _WEEKDAY.search(text) else 0.0
    names = [n for n in facts.names if new(n)]
    if kind == "place":
        if any(new(m.group(1)) for m in _PLACE_PREP.finditer(text)):
            return 1.0
        return 0.5 if names else 0.0
    people = [n for n in names if looks_like_person(n)]
    return 1.0 if people else (0.5 if names else 0.0)


def looks_like_person(name: str) -> bool:
    """Two or more capitalised tokens, no organisation word or "of", not only titles, not an acronym."""
    toks = [t.lower().strip(".") for t in name.replace(".", ". ").split()]
    if len(toks) < 2 or any(t in _ORG_WORDS or t in ("of", "the") for t in toks):
        return False
    if all(t in _TITLE_WORDS for t in toks):
        return False
    return not all(t.isupper() for t in name.split())


class SentenceCache:
    """Bounded LRU of chunk id -> (sentences in document offsets, their embeddings)."""

    def __init__(self, size: int = CACHE_CHUNKS) -> None:
        self.size = size
        self._data: OrderedDict[str, tuple[list[Sentence], np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, chunk_id: str) -> tuple[list[Sentence], np.ndarray] | None:
        item = self._data.get(chunk_id)
        if item is not None:
            self._data.move_to_end(chunk_id)
        return item

    def put(self, chunk_id: str, sentences: list[Sentence], vectors: np.ndarray) -> None:
        self._data[chunk_id] = (sentences, vectors)
        self._data.move_to_end(chunk_id)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


def usable(sentence: Sentence) -> bool:
    """Whether a sentence can be an answer: not a question, not too short or too long."""
    n = len(sentence.text.split())
    return MIN_WORDS <= n <= MAX_WORDS and not sentence.text.rstrip("\"'\u201d\u2019) ").endswith("?")


def _is_fragment(text: str) -> bool:
    first = re.search(r"[A-Za-z0-9\"'\u201c\u2018]", text)
    starts_low = bool(first) and first.group(0).islower()  # type: ignore[union-attr]
    return starts_low or not re.search(r"[.!?\u2026][\"'\u201d\u2019)\]]*$", text)


class ExtractiveAnswerer:
    """Picks, scores and cites sentences of retrieved passages."""

    def __init__(self, embedder: Any, settings: Settings, *, cache_size: int = CACHE_CHUNKS) -> None:
        self.embedder = embedder
        self.settings = settings
        self.cache = SentenceCache(cache_size)

    def sentences_of(self, hits: list[Hit]) -> list[tuple[list[Sentence], np.ndarray]]:
        """Usable sentences and embeddings of each hit's chunk, embedding uncached ones in one batch."""
        missing: dict[str, list[Sentence]] = {}
        for hit in hits:
            cid = hit.chunk.chunk_id
            if cid not in missing and self.cache.get(cid) is None:
                sents = split_sentences(hit.chunk.text, offset=hit.chunk.start)
                missing[cid] = [s for s in sents if usable(s)]
        texts = [s.text for sents in missing.values() for s in sents]
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32) if texts else np.zeros((0, 1), np.float32)
        pos = 0
        for cid, sents in missing.items():
            self.cache.put(cid, sents, vectors[pos : pos + len(sents)])
            pos += len(sents)
        out = []
        for hit in hits:
            item = self.cache.get(hit.chunk.chunk_id)
            out.append(item if item is not None else ([], np.zeros((0, 1), np.float32)))
        return out

    def rank(self, question: str, hits: list[Hit]) -> Ranking:
        """Every usable sentence of ``hits`` scored for ``question``, best first."""
        q = analyse_question(question)
        coverage, missing = key_coverage(q, hits)
        qvec = np.asarray(self.embedder.embed_query(question), dtype=np.float32).reshape(-1)
        cands: list[Candidate] = []
        seen: set[tuple[str, int, int]] = set()  # overlapping chunks share sentences: score each once
        n = max(len(hits), 1)
        for rank, (hit, (sents, vecs)) in enumerate(zip(hits, self.sentences_of(hits))):
            sims = vecs @ qvec if len(sents) else []
            for sent, vec, sim in zip(sents, vecs, sims):
                if (hit.chunk.doc_id, sent.start, sent.end) in seen:
                    continue
                seen.add((hit.chunk.doc_id, sent.start, sent.end))
                cands.append(self._score(q, Candidate(hit, rank, sent, vec), float(sim), 1.0 - rank / n))
        cands.sort(key=lambda c: (-c.score, c.rank, c.sentence.start))
        reason = None
        if coverage < MIN_KEY_COVERAGE:
            reason = "none of them mentions " + _quoted(missing)
        elif not cands or cands[0].score < MIN_SCORE:
            reason = "none of them answers the question closely enough"
        return Ranking(q, cands, reason, coverage)

    def _score(self, q: Question, cand: Candidate, sim: float, prior: float) -> Candidate:
        lex = lexical_overlap(q, cand.text)
        kind = has_answer_type(q.answer_type, cand.text, q)
        fragment = 1.0 if _is_fragment(cand.text) else 0.0
        score = W_DENSE * sim + W_LEXICAL * lex + W_TYPE * kind + W_RANK * prior - FRAGMENT_PENALTY * fragment
        cand.score = round(score, 4)
        cand.parts = {"dense": round(sim, 4), "lexical": round(lex, 4), "type": kind, "rank": round(prior, 3),
                      "fragment": fragment}
        return cand

    def select(self, ranking: Ranking, limit: int | None = None) -> list[Candidate]:
        """The best sentences: near-duplicates dropped, only those close to the best one kept."""
        limit = limit or self.settings.answer_sentences
        chosen: list[Candidate] = []
        seen: list[set] = []
        for cand in ranking.candidates:
            if len(chosen) == limit:
                break
            if chosen and cand.score < chosen[0].score - KEEP_MARGIN:
                break
            sh = shingles(cand.text)
            if any(containment(sh, other) >= DUPLICATE_CONTAINMENT for other in seen):
                continue
            chosen.append(cand)
            seen.append(sh)
        return chosen

    def answer(self, question: str, hits: list[Hit], *, searched: str) -> Answer:
        """A cited extractive answer, or an abstention that says what was searched."""
        t0 = time.perf_counter()
        ranking = self.rank(question, hits)
        timings = {"extract": round(time.perf_counter() - t0, 4)}
        if ranking.abstain_reason is not None or not hits:
            text = abstain_text(searched, ranking.abstain_reason or "nothing was found")
            return Answer(question, text, True, "extractive", passages=hits, searched=searched, timings=timings)
        chosen = self.select(ranking)
        citations = [citation_for(i, c.hit, c.sentence.start, c.sentence.end) for i, c in enumerate(chosen, 1)]
        checks = [check(c.text, [k.key], [c.hit.chunk.text]) for c, k in zip(chosen, citations)]
        text = " ".join(f"{c.text} [{k.key}]" for c, k in zip(chosen, citations))
        return Answer(question, text, False, "extractive", citations=citations, sentences=checks,
                      passages=hits, searched=searched, timings=timings)


def lexical_overlap(q: Question, text: str) -> float:
    """Weighted share of the question's terms that occur in ``text`` (stemmed, folded)."""
    total = sum(q.terms.values())
    if not total:
        return 0.0
    have = {stem(w) for w in words(fold(text))}
    return sum(w for t, w in q.terms.items() if t in have) / total


def key_coverage(q: Question, hits: list[Hit]) -> tuple[float, list[str]]:
    """Share of the question's key terms found in any passage (text, title, source, date), and the missing."""
    if not q.key_terms:
        return 1.0, []
    have: set[str] = set()
    for hit in hits:
        c = hit.chunk
        have.update(stem(w) for w in words(fold(f"{c.title} {c.source} {c.date or ''} {c.text}")))
    missing = [word for k, word in q.key_terms.items() if k not in have]
    return 1.0 - len(missing) / len(q.key_terms), missing


def citation_for(key: int, hit: Hit, start: int, end: int) -> Citation:
    """A citation of the document span ``[start, end)``, which lies inside ``hit``'s chunk."""
    c = hit.chunk
    if not (c.start <= start < end <= c.end):
        raise ValueError(f"span [{start}, {end}) is outside chunk {c.chunk_id} [{c.start}, {c.end})")
    quote = c.text[start - c.start : end - c.start]
    return Citation(key, c.source, c.doc_id, c.chunk_id, start, end, quote, title=c.title, date=c.date)


def check(text: str, keys: list[int], passages: list[str]) -> SentenceCheck:
    """Run the claim checker on one answer sentence against the passages it cites."""
    verdict = check_sentence(text, passages)
    return SentenceCheck(text, keys, verdict.supported, verdict.problems, verdict.overlap)


def abstain_text(searched: str, reason: str) -> str:
    """The abstention: the sentinel, then what was searched and why nothing answered."""
    return f"{ABSTAIN}. Searched {searched}: {reason}. The closest passages are listed below."


def _quoted(terms: list[str]) -> str:
    items = [f'"{t}"' for t in terms[:4]]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
