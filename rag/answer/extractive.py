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
score within ``keep_margin`` of it, near duplicates dropped (and, when the best
one lacks the asked-for type, the best one that has it). It abstains when none
of the question's names and numbers occurs in any retrieved passage, or when no
candidate is close to the question by embedding and none scores well either.

Only the ``answer_embed_sentences`` candidates best by the cheap features (all but
dense) are embedded and scored in full: that bounds the embedding cost per question
(it dominated ask latency at 100k chunks) for well under a point of accuracy.

Calibration (``bench/calibrate_extractive.py``; weights tuned for best-sentence
accuracy on the SQuAD 2.0 dev split, thresholds chosen on the dev splits of both
sets with over-abstention held under ~10%; numbers below are the test splits, with
12 sentences embedded per question, over the 200-token chunks of that time; the
harness's figures at the current defaults are in the README):
SQuAD 2.0 (1,500 sampled questions, 1,204 paragraphs): the best sentence holds
the gold answer for 76% of answerable questions, the answer for 79%; 6% of
answerable questions abstain, and only 15% of the (adversarial) unanswerable
ones do. MultiHop-RAG (609 articles; entity-answer and null queries): 82% of
null queries abstain at 64% precision, 15% of answerable ones abstain, and the
answer holds the gold entity for 52% of answerable ones.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from rag.answer.question import Question, analyse_question, is_yes_no
from rag.cache import LRU
from rag.config import Settings
from rag.nlp.claims import Facts, check_sentence, extract_facts
from rag.nlp.entities import find_people, looks_like_person
from rag.nlp.text import (
    Sentence,
    containment,
    fold,
    match_stem,
    shingles,
    split_sentences,
    words,
)
from rag.ports import Embedder
from rag.prompts import ABSTAIN
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
    # Abstain when (a) no name or number of the question occurs in any retrieved passage (coverage 0:
    # long multi-hop questions often miss some of theirs, so a partial miss is not enough), or (b) no
    # candidate is similar to the question (dense below min_dense) and none scores min_score either.
    min_key_coverage: float = 0.01
    min_dense: float = 0.50
    min_score: float = 0.50
    keep_margin: float = 0.08  # further sentences are kept only within this of the best score
    type_margin: float = 0.15  # an untyped best sentence brings the best typed one within this margin

    def vector(self) -> np.ndarray:
        """Weights in ``FEATURES`` order (penalties negative)."""
        return np.array(
            [self.dense, self.lexical, self.rare, self.answer_type, -self.no_type, self.rank, -self.fragment],
            dtype=np.float32,
        )


FEATURES = ("dense", "lexical", "rare", "type", "no_type", "rank", "fragment")
DUPLICATE_CONTAINMENT = 0.6  # folded 3-gram containment above which two sentences count as one
MIN_WORDS, MAX_WORDS = 4, 90  # shorter sentences say too little; longer ones are lists or tables
YES_NO_NOTICE = (
    "This is a yes/no question: extractive mode quotes the passages that bear on it but does not judge "
    "yes or no. Configure an LLM for a direct answer."
)
CACHE_CHUNKS = 4096  # chunks whose candidate sentences are kept (per answerer)
CACHE_VECTORS = 16384  # sentence embeddings kept (per answerer; 1.5 KB each)

_PLACE_PREP = re.compile(
    r"\b(?:in|at|to|from|near|into|inside|outside|across|visited|reached)\s+(?:the\s+)?"
    r"([A-Z][\w'\u2019-]*(?:\s+[A-Z][\w'\u2019-]*)*)"
)
_YEARISH = re.compile(
    r"\b(?:\d{3,4}s?|\d{1,2}(?:st|nd|rd|th)[- ]centur(?:y|ies)|(?:early|mid|late)[- ]\d{3,4}s"
    r"|(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|twenty-first)"
    r" centur(?:y|ies))\b",
    re.IGNORECASE,
)
_WEEKDAY = re.compile(
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|"
    r"tomorrow|week|month|year|decade)s?\b",
    re.IGNORECASE,
)
_NUMBER_WORD = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|billion|dozen|dozens|hundreds|thousands|millions|several|few)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SentenceInfo:
    """A candidate sentence (document offsets) with what scoring needs, computed once per chunk."""

    sentence: Sentence
    tokens: frozenset[str]  # folded, stemmed words
    facts: Facts
    places: tuple[str, ...]  # capitalised phrases after in/at/to/from...
    fragment: bool


@dataclass
class AnswerCandidate:
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
    candidates: list[AnswerCandidate]
    abstain_reason: str | None
    key_coverage: float


# --- the question ----------------------------------------------------------------------------


# --- candidate sentences -------------------------------------------------------------------------


def sentence_info(sentence: Sentence | str) -> SentenceInfo:
    """Tokens, facts, places and the fragment flag of one sentence."""
    sent = sentence if isinstance(sentence, Sentence) else Sentence(0, len(sentence), sentence)
    text = sent.text
    first = re.search(r"[A-Za-z0-9\"'\u201c\u2018]", text)
    fragment = bool(first and first.group(0).islower()) or not re.search(
        r"[.!?\u2026][\"'\u201d\u2019)\]]*$", text
    )
    return SentenceInfo(
        sent,
        frozenset(match_stem(w) for w in words(fold(text))),
        extract_facts(text),
        tuple(m.group(1) for m in _PLACE_PREP.finditer(text)),
        fragment,
    )


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
        return any(match_stem(w) not in asked for w in words(fold(item)))

    text, facts = info.sentence.text, info.facts
    if kind == "number":
        return 1.0 if any(new(n) for n in facts.numbers) else (0.5 if _NUMBER_WORD.search(text) else 0.0)
    if kind == "date":
        if any(new(d) for d in facts.dates) or any(new(y) for y in _YEARISH.findall(text)):
            return 1.0
        return 0.5 if _WEEKDAY.search(text) or facts.numbers else 0.0
    if kind == "role":  # the asked person with a title ("Andrey A. Boytsov, First Deputy Director")
        people = [m.fields for m in find_people(info.sentence, 0) if m.fields.get("title")]
        named = [p for p in people if any(match_stem(w) in asked for w in words(fold(str(p["name"]))))]
        return 1.0 if named else (0.5 if people else 0.0)
    names = [n for n in facts.names if new(n)]
    if kind == "place":
        return 1.0 if any(new(p) for p in info.places) else (0.5 if names else 0.0)
    return 1.0 if any(looks_like_person(n) for n in names) else (0.5 if names else 0.0)


def features(
    q: Question, infos: list[SentenceInfo], sims: np.ndarray, ranks: list[int], n_hits: int
) -> np.ndarray:
    """The ``FEATURES`` matrix of the candidates (one row each)."""
    total = sum(q.terms.values())
    df = {t: sum(t in i.tokens for i in infos) for t in q.terms}
    idf = {t: math.log((len(infos) + 1) / (df[t] + 0.5)) for t in q.terms}
    total_idf = sum(idf.values())
    rows = []
    for info, sim, rank in zip(infos, sims, ranks):
        have = [t for t in q.terms if t in info.tokens]
        kind = has_answer_type(q.answer_type, info, q)
        rows.append(
            [
                float(sim),
                sum(q.terms[t] for t in have) / total if total else 0.0,
                sum(idf[t] for t in have) / total_idf if total_idf > 0 else 0.0,
                kind,
                1.0 if q.answer_type and kind == 0 else 0.0,
                1.0 - rank / max(n_hits, 1),
                1.0 if info.fragment else 0.0,
            ]
        )
    return np.array(rows, dtype=np.float32).reshape(-1, len(FEATURES))


def shortlist(feats: np.ndarray, w: Weights, limit: int) -> np.ndarray:
    """Indices (in input order) of the ``limit`` candidates best by every feature but dense: the ones
    worth embedding. All of them when there are no more than ``limit``."""
    if len(feats) <= limit:
        return np.arange(len(feats))
    return np.sort(np.argsort(-(feats[:, 1:] @ w.vector()[1:]), kind="stable")[:limit])


def abstain_reason(
    w: Weights, coverage: float, missing: list[str], feats: np.ndarray, scores: np.ndarray
) -> str | None:
    """Why the candidates cannot answer (None when they can)."""
    if coverage < w.min_key_coverage:
        return "none of them mentions " + _quoted(missing)
    if not len(scores):
        return "they hold no usable sentence"
    if float(feats[:, 0].max()) < w.min_dense and float(scores.max()) < w.min_score:
        also = f", and none mentions {_quoted(missing)}" if missing else ""
        return "none of them answers the question closely enough" + also
    return None


def key_coverage(q: Question, hits: list[Hit]) -> tuple[float, list[str]]:
    """Share of the question's key terms found in any passage (text, title, source, date), and the missing."""
    if not q.key_terms:
        return 1.0, []
    have: set[str] = set()
    for hit in hits:
        c = hit.chunk
        have.update(match_stem(w) for w in words(fold(f"{c.title} {c.source} {c.date or ''} {c.text}")))
    missing = [word for k, word in q.key_terms.items() if k not in have]
    return 1.0 - len(missing) / len(q.key_terms), missing


# --- the answerer --------------------------------------------------------------------------------


class ExtractiveAnswerer:
    """Picks, scores and cites sentences of retrieved passages."""

    def __init__(
        self,
        embedder: Embedder,
        settings: Settings,
        *,
        weights: Weights | None = None,
        cache_size: int = CACHE_CHUNKS,
    ) -> None:
        self.embedder = embedder
        self.settings = settings
        self.weights = weights or Weights()
        self.infos = LRU(cache_size)  # chunk id -> its candidate sentences
        self.vectors = LRU(CACHE_VECTORS)  # (doc id, start, end) -> sentence embedding

    def sentences_of(self, hit: Hit) -> list[SentenceInfo]:
        """Usable sentences of a hit's chunk with their cheap features (cached per chunk)."""
        infos = self.infos.get(hit.chunk.chunk_id)
        if infos is None:
            sents = split_sentences(hit.chunk.text, offset=hit.chunk.start)
            infos = [sentence_info(s) for s in sents if usable(s)]
            self.infos.put(hit.chunk.chunk_id, infos)
        return infos

    def similarities(self, question: str, cands: list[AnswerCandidate]) -> np.ndarray:
        """Cosine similarity of the question to each candidate; uncached sentences embedded in one batch."""
        qvec = np.asarray(self.embedder.embed_query(question), dtype=np.float32).reshape(-1)
        keys = [(c.hit.chunk.doc_id, c.sentence.start, c.sentence.end) for c in cands]
        vecs = [self.vectors.get(k) for k in keys]
        todo = [i for i, v in enumerate(vecs) if v is None]
        if todo:
            fresh = np.asarray(self.embedder.embed([cands[i].text for i in todo]), dtype=np.float32)
            for i, v in zip(todo, fresh):
                vecs[i] = v
                self.vectors.put(keys[i], v)
        return np.array([float(v @ qvec) for v in vecs], dtype=np.float32)

    def rank(self, question: str, hits: list[Hit]) -> Ranking:
        """The usable sentences of ``hits`` scored for ``question``, best first.

        Every sentence gets the cheap features; only the ``answer_embed_sentences`` best by
        them are embedded and kept, so the embedding cost per question is bounded.
        """
        q = analyse_question(question)
        coverage, missing = key_coverage(q, hits)
        cands: list[AnswerCandidate] = []
        seen: set[tuple[str, int, int]] = set()  # overlapping chunks share sentences: score each once
        for rank, hit in enumerate(hits):
            for info in self.sentences_of(hit):
                span = (hit.chunk.doc_id, info.sentence.start, info.sentence.end)
                if span not in seen:
                    seen.add(span)
                    cands.append(AnswerCandidate(hit, rank, info))
        vec = self.weights.vector()
        ranks = [c.rank for c in cands]
        feats = features(q, [c.info for c in cands], np.zeros(len(cands)), ranks, len(hits))
        keep = shortlist(feats, self.weights, self.settings.answer_embed_sentences)
        cands, feats = [cands[i] for i in keep], feats[keep]
        if cands:
            feats[:, 0] = self.similarities(question, cands)
        scores = feats @ vec
        for cand, row, score in zip(cands, feats, scores):
            cand.score = round(float(score), 4)
            cand.parts = {name: round(float(v), 4) for name, v in zip(FEATURES, row)}
        cands.sort(key=lambda c: (-c.score, c.rank, c.sentence.start))
        return Ranking(q, cands, abstain_reason(self.weights, coverage, missing, feats, scores), coverage)

    def select(self, ranking: Ranking, limit: int | None = None) -> list[AnswerCandidate]:
        """The sentences of the answer (see ``choose``)."""
        cands = ranking.candidates
        picked = choose(
            [c.score for c in cands],
            [c.parts["type"] for c in cands],
            [shingles(c.text) for c in cands],
            self.weights,
            limit or self.settings.answer_sentences,
            typed=ranking.question.answer_type is not None,
        )
        return [cands[i] for i in picked]

    def answer(self, question: str, hits: list[Hit], *, searched: str) -> Answer:
        """A cited extractive answer, or an abstention that says what was searched."""
        t0 = time.perf_counter()
        ranking = self.rank(question, hits)
        timings = {"extract": round(time.perf_counter() - t0, 4)}
        if ranking.abstain_reason is not None or not hits:
            text = abstain_text(searched, ranking.abstain_reason or "nothing was found")
            return Answer(
                question, text, True, "extractive", passages=hits, searched=searched, timings=timings
            )
        chosen = self.select(ranking)
        citations = [
            citation_for(i, c.hit, c.sentence.start, c.sentence.end) for i, c in enumerate(chosen, 1)
        ]
        checks = [check(c.text, [k.key], [c.hit.chunk.text]) for c, k in zip(chosen, citations)]
        text = " ".join(f"{c.text} [{k.key}]" for c, k in zip(chosen, citations))
        return Answer(
            question,
            text,
            False,
            "extractive",
            citations=citations,
            sentences=checks,
            passages=hits,
            searched=searched,
            timings=timings,
            notice=YES_NO_NOTICE if is_yes_no(question) else None,
        )


def choose(
    scores: list[float], types: list[float], sh: list[set], w: Weights, limit: int, *, typed: bool
) -> list[int]:
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
    return Citation(
        key,
        c.source,
        c.doc_id,
        c.chunk_id,
        start,
        end,
        quote,
        title=c.title,
        date=c.date,
        page=c.page_at(start),
        publisher=c.publisher,
    )


def check(text: str, keys: list[int], passages: list[str]) -> SentenceCheck:
    """Run the claim checker on one answer sentence against the passages it cites."""
    verdict = check_sentence(text, passages)
    return SentenceCheck(text, keys, verdict.supported, verdict.problems, verdict.overlap)


def abstain_text(searched: str, reason: str) -> str:
    """The abstention: the sentinel, then what was searched and why nothing answered."""
    return f"{ABSTAIN}. Searched {searched}: {reason}. The closest passages are listed below."


def _quoted(terms: list[str]) -> str:
    items = [f'"{t}"' for t in terms[:4]] or ["the names in the question"]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
