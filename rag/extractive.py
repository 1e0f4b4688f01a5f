"""Extractive answers: the retrieved sentences that best answer the question, cited.

Used when no LLM is configured, and as the fallback when an LLM answer cannot be
verified. Candidates are the sentences of the retrieved passages only. Each gets
a score from features (``FEATURES``) combined by ``Weights``: dense similarity
to the question; the share of the question's content words it holds (names and
numbers count double); the same share weighted by how rare each word is among
the candidates (a word every sentence has does not pick one out); whether it
holds a new item of the kind asked for (a person for "who", a date for "when",
a number for "how many", a place for "where"), with a penalty when it holds none;
a small passage-rank prior; and a penalty for fragments cut by a chunk boundary.

The answer is the best sentence plus up to ``answer_sentences - 1`` more that
score within ``keep_margin`` of it, near duplicates dropped. It abstains when
the question's names and numbers are missing from every retrieved passage, or
when the best score is below ``min_score``.

The weights and thresholds in ``Weights`` were calibrated on dev splits with
``bench/calibrate_extractive.py`` (see that file for the commands and numbers).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.claims import Facts, check_sentence, extract_facts
from rag.config import Settings
from rag.prompts import ABSTAIN
from rag.text import (
    WORD_RE,
    Sentence,
    containment,
    content_words,
    fold,
    shingles,
    split_sentences,
    stem,
    words,
)
from rag.types import Answer, Citation, Hit, SentenceCheck


@dataclass(frozen=True)
class Weights:
    """How features combine into a score, and when to abstain (settings-like, calibrated constants)."""

    dense: float = 0.30  # cosine similarity of question and sentence embeddings
    lexical: float = 0.20  # share of the question's content words in the sentence (names/numbers x2)
    rare: float = 0.35  # the same share, each word weighted by its rarity among the candidates
    answer_type: float = 0.10  # holds a new item of the expected answer type (0.5 for a weaker sign)
    no_type: float = 0.10  # penalty: the question expects a type and the sentence holds none
    rank: float = 0.08  # passage-rank prior, 1.0 for the first passage down to 1/k for the last
    fragment: float = 0.05  # penalty: starts in lower case or lacks a final stop (cut by a chunk boundary)
    min_score: float = 0.40  # abstain when the best candidate scores below this
    min_key_coverage: float = 0.75  # abstain when a smaller share of the question's key terms occurs anywhere
    keep_margin: float = 0.08  # further sentences are kept only within this of the best score
    type_margin: float = 0.15  # an untyped best sentence brings the best typed one within this margin

    def vector(self) -> np.ndarray:
        """Weights in ``FEATURES`` order (penalties negative)."""
        return np.array([self.dense, self.lexical, self.rare, self.answer_type, -self.no_type, self.rank,
                         -self.fragment], dtype=np.float32)


FEATURES = ("dense", "lexical", "rare", "type", "no_type", "rank", "fragment")
KEY_TERM_WEIGHT = 2.0  # weight of a name or number in the question, relative to an ordinary content word
DUPLICATE_CONTAINMENT = 0.6  # folded 3-gram containment above which two sentences count as one
MIN_WORDS, MAX_WORDS = 4, 90  # shorter sentences say too little; longer ones are lists or tables
CACHE_CHUNKS = 4096  # chunks whose sentences and embeddings are kept (per answerer)

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
_AUX = r"(?:did|do|does|was|were|is|are|will|would|could|can|had|has|have|should|might)"
_YEARISH = re.compile(
    r"\b(?:\d{3,4}s?|\d{1,2}(?:st|nd|rd|th)[- ]centur(?:y|ies)|(?:early|mid|late)[- ]\d{3,4}s"
    r"|(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|"
    r"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|twenty-first) centur(?:y|ies))\b",
    re.IGNORECASE,
)
_WEEKDAY = re.compile(r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|"
                      r"tomorrow|week|month|year|decade)s?\b", re.IGNORECASE)
_NUMBER_WORD = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|billion|dozen|dozens|hundreds|thousands|millions|several|few)\b", re.IGNORECASE
)


@dataclass
class Question:
    """What the scorer needs to know about a question."""

    text: str
    terms: dict[str, float]  # stemmed content word -> weight
    key_terms: dict[str, str]  # stemmed token of a name or number -> the word as asked (passages must mention it)
    answer_type: str | None  # "person", "date", "number", "place" or None


@dataclass(frozen=True)
class SentenceInfo:
    """A candidate sentence (document offsets) with what scoring needs, computed once per chunk."""

    sentence: Sentence
    tokens: frozenset[str]  # folded, stemmed words
    facts: Facts
    places: tuple[str, ...]  # capitalised phrases after in/at/to/from...
    fragment: bool


@dataclass
class Candidate:
    """A sentence of a retrieved passage, its score and the features behind it."""

    hit: Hit
    rank: int  # 0-based rank of its passage
    info: SentenceInfo
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def sentence(self) -> Sentence:
        """The sentence with its document span."""
        return self.info.sentence

    @property
    def text(self) -> str:
        """The sentence text (exactly the stored report text at its span)."""
        return self.info.sentence.text


@dataclass
class Ranking:
    """Candidates best first, and why the answer abstains (None when it does not)."""

    question: Question
    candidates: list[Candidate]
    abstain_reason: str | None
    key_coverage: float


# --- the question ----------------------------------------------------------------------------


def analyse_question(question: str) -> Question:
    """Content words with weights, key terms (names and numbers) and the expected answer type."""
    facts = extract_facts(question)
    # stemmed, folded token -> the token as asked (shown when the passages lack it)
    key = {stem(words(w)[0]): w for n in facts.names + facts.numbers + facts.dates for w in WORD_RE.findall(n)
           if words(w)[0] not in _QUESTION_FILLER and len(w) > 1}
    terms: dict[str, float] = {}
    for w in content_words(fold(question)):
        s = stem(w)
        if w in _QUESTION_FILLER or s in _QUESTION_FILLER:
            continue
        terms[s] = KEY_TERM_WEIGHT if s in key else 1.0
    return Question(question, terms, key, answer_type(question))


def answer_type(question: str) -> str | None:
    """The kind of thing a question asks for, from its wh-phrase ("when" only as a question word)."""
    q = fold(question).strip()
    if re.search(r"\bhow (?:many|much|long|old|far|often|large|big)\b|\bwhat (?:number|percentage|share|amount)\b", q):
        return "number"
    if re.search(rf"\bwhen {_AUX}\b|\bwhat (?:year|date|day|month|time)\b|\b(?:which|what) (?:year|century|decade)", q):
        return "date"
    if re.search(r"\bwhere\b|\bwhat (?:city|country|place|venue|location)\b|\bwhich (?:city|country|place)\b", q):
        return "place"
    if re.search(r"\bwho(?:m|se)?\b", q):
        return "person"
    return None


def looks_like_person(name: str) -> bool:
    """Two or more capitalised tokens, no organisation word or "of", not only titles, not an acronym."""
    toks = [t.lower().strip(".") for t in name.replace(".", ". ").split()]
    if len(toks) < 2 or any(t in _ORG_WORDS or t in ("of", "the") for t in toks):
        return False
    if all(t in _TITLE_WORDS for t in toks):
        return False
    return not all(t.isupper() for t in name.split())


# --- candidate sentences -------------------------------------------------------------------------


def sentence_info(sentence: Sentence | str) -> SentenceInfo:
    """Tokens, facts, places and the fragment flag of one sentence."""
    sent = sentence if isinstance(sentence, Sentence) else Sentence(0, len(sentence), sentence)
    text = sent.text
    first = re.search(r"[A-Za-z0-9\"'\u201c\u2018]", text)
    fragment = bool(first and first.group(0).islower()) or not re.search(r"[.!?\u2026][\"'\u201d\u2019)\]]*$", text)
    return SentenceInfo(sent, frozenset(stem(w) for w in words(fold(text))), extract_facts(text),
                        tuple(m.group(1) for m in _PLACE_PREP.finditer(text)), fragment)


def usable(sentence: Sentence) -> bool:
    """Whether a sentence can be an answer: not a question, not too short or too long."""
    n = len(sentence.text.split())
    return MIN_WORDS <= n <= MAX_WORDS and not sentence.text.rstrip("\"'\u201d\u2019) ").endswith("?")


def has_answer_type(kind: str | None, info: SentenceInfo | str, question: Question) -> float:
    """1.0 when the sentence holds a new item of the expected type, 0.5 for a weaker sign, else 0."""
    if kind is None:
        return 0.0
    info = info if isinstance(info, SentenceInfo) else sentence_info(info)
    asked = set(question.terms)

    def new(item: str) -> bool:
        return any(stem(w) not in asked for w in words(fold(item)))

    text, facts = info.sentence.text, info.facts
    if kind == "number":
        return 1.0 if any(new(n) for n in facts.numbers) else (0.5 if _NUMBER_WORD.search(text) else 0.0)
    if kind == "date":
        if any(new(d) for d in facts.dates) or any(new(y) for y in _YEARISH.findall(text)):
            return 1.0
        return 0.5 if _WEEKDAY.search(text) or facts.numbers else 0.0
    names = [n for n in facts.names if new(n)]
    if kind == "place":
        return 1.0 if any(new(p) for p in info.places) else (0.5 if names else 0.0)
    return 1.0 if any(looks_like_person(n) for n in names) else (0.5 if names else 0.0)


def features(q: Question, infos: list[SentenceInfo], sims: np.ndarray, ranks: list[int], n_hits: int) -> np.ndarray:
    """The ``FEATURES`` matrix of the candidates (one row each)."""
    total = sum(q.terms.values())
    df = {t: sum(t in i.tokens for i in infos) for t in q.terms}
    idf = {t: math.log((len(infos) + 1) / (df[t] + 0.5)) for t in q.terms}
    total_idf = sum(idf.values())
    rows = []
    for info, sim, rank in zip(infos, sims, ranks):
        have = [t for t in q.terms if t in info.tokens]
        kind = has_answer_type(q.answer_type, info, q)
        rows.append([
            float(sim),
            sum(q.terms[t] for t in have) / total if total else 0.0,
            sum(idf[t] for t in have) / total_idf if total_idf > 0 else 0.0,
            kind,
            1.0 if q.answer_type and kind == 0 else 0.0,
            1.0 - rank / max(n_hits, 1),
            1.0 if info.fragment else 0.0,
        ])
    return np.array(rows, dtype=np.float32).reshape(-1, len(FEATURES))


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


class SentenceCache:
    """Bounded LRU of chunk id -> (its usable sentences with features, their embeddings)."""

    def __init__(self, size: int = CACHE_CHUNKS) -> None:
        self.size = size
        self._data: OrderedDict[str, tuple[list[SentenceInfo], np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()  # page sessions share one answerer: get/put race on eviction

    def __len__(self) -> int:
        return len(self._data)

    def get(self, chunk_id: str) -> tuple[list[SentenceInfo], np.ndarray] | None:
        """The cached entry (marked most recently used), or None."""
        with self._lock:
            item = self._data.get(chunk_id)
            if item is not None:
                self._data.move_to_end(chunk_id)
            return item

    def put(self, chunk_id: str, infos: list[SentenceInfo], vectors: np.ndarray) -> None:
        """Store an entry, evicting the least recently used beyond ``size``."""
        with self._lock:
            self._data[chunk_id] = (infos, vectors)
            self._data.move_to_end(chunk_id)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


# --- the answerer --------------------------------------------------------------------------------


class ExtractiveAnswerer:
    """Picks, scores and cites sentences of retrieved passages."""

    def __init__(self, embedder: Any, settings: Settings, *, weights: Weights | None = None,
                 cache_size: int = CACHE_CHUNKS) -> None:
        self.embedder = embedder
        self.settings = settings
        self.weights = weights or Weights()
        self.cache = SentenceCache(cache_size)

    def sentences_of(self, hits: list[Hit]) -> list[tuple[list[SentenceInfo], np.ndarray]]:
        """Usable sentences and embeddings of each hit's chunk; uncached chunks are embedded in one batch."""
        missing: dict[str, list[SentenceInfo]] = {}
        for hit in hits:
            cid = hit.chunk.chunk_id
            if cid not in missing and self.cache.get(cid) is None:
                sents = split_sentences(hit.chunk.text, offset=hit.chunk.start)
                missing[cid] = [sentence_info(s) for s in sents if usable(s)]
        texts = [i.sentence.text for infos in missing.values() for i in infos]
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32) if texts else np.zeros((0, 1), np.float32)
        pos = 0
        out = {}
        for cid, infos in missing.items():
            out[cid] = (infos, vectors[pos : pos + len(infos)])
            self.cache.put(cid, *out[cid])
            pos += len(infos)
        empty: tuple[list[SentenceInfo], np.ndarray] = ([], np.zeros((0, 1), np.float32))
        return [out.get(h.chunk.chunk_id) or self.cache.get(h.chunk.chunk_id) or empty for h in hits]

    def rank(self, question: str, hits: list[Hit]) -> Ranking:
        """Every usable sentence of ``hits`` scored for ``question``, best first."""
        q = analyse_question(question)
        coverage, missing = key_coverage(q, hits)
        qvec = np.asarray(self.embedder.embed_query(question), dtype=np.float32).reshape(-1)
        cands: list[Candidate] = []
        sims: list[float] = []
        seen: set[tuple[str, int, int]] = set()  # overlapping chunks share sentences: score each once
        for rank, (hit, (infos, vecs)) in enumerate(zip(hits, self.sentences_of(hits))):
            for info, sim in zip(infos, (vecs @ qvec) if infos else []):
                span = (hit.chunk.doc_id, info.sentence.start, info.sentence.end)
                if span not in seen:
                    seen.add(span)
                    cands.append(Candidate(hit, rank, info))
                    sims.append(float(sim))
        feats = features(q, [c.info for c in cands], np.array(sims), [c.rank for c in cands], len(hits))
        scores = feats @ self.weights.vector()
        for cand, row, score in zip(cands, feats, scores):
            cand.score = round(float(score), 4)
            cand.parts = {name: round(float(v), 4) for name, v in zip(FEATURES, row)}
        cands.sort(key=lambda c: (-c.score, c.rank, c.sentence.start))
        reason = None
        if coverage < self.weights.min_key_coverage:
            reason = "none of them mentions " + _quoted(missing)
        elif not cands or cands[0].score < self.weights.min_score:
            reason = "none of them answers the question closely enough"
        return Ranking(q, cands, reason, coverage)

    def select(self, ranking: Ranking, limit: int | None = None) -> list[Candidate]:
        """The sentences of the answer (see ``choose``)."""
        cands = ranking.candidates
        picked = choose([c.score for c in cands], [c.parts["type"] for c in cands], [shingles(c.text) for c in cands],
                        self.weights, limit or self.settings.answer_sentences,
                        typed=ranking.question.answer_type is not None)
        return [cands[i] for i in picked]

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


def choose(scores: list[float], types: list[float], sh: list[set], w: Weights, limit: int, *,
           typed: bool) -> list[int]:
    """Indices of the answer sentences among candidates sorted best first.

    The best one, then more within ``keep_margin`` of it, near duplicates skipped.
    When the question asks for a type (who, when...) and the best sentence holds
    none, the best sentence that does is added too if within ``type_margin``.
    """
    chosen: list[int] = []

    def add(i: int) -> None:
        if not any(containment(sh[i], sh[j]) >= DUPLICATE_CONTAINMENT for j in chosen):
            chosen.append(i)

    for i in range(len(scores)):
        if len(chosen) == limit or (chosen and scores[i] < scores[chosen[0]] - w.keep_margin):
            break
        add(i)
    if typed and chosen and not any(types[i] == 1.0 for i in chosen):
        best = next((i for i in range(len(scores)) if types[i] == 1.0), None)
        if best is not None and scores[best] >= scores[0] - w.type_margin:
            chosen = chosen[: limit - 1]
            add(best)
    return chosen


# --- shared by both answer modes ---------------------------------------------------------------


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
