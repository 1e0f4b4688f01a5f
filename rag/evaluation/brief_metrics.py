"""Brief and summary metrics: ROUGE as the summarisation papers compute it, the Lead-k
baseline, key-fact recall and length compliance.

Sentence splitting for ROUGE and Lead-k is ``split_simple`` (split after ``.``, ``!``
or ``?`` followed by whitespace, and at newlines). It reproduces the local anchors in
``datasets/news-summ-element-aware/SOURCE.md`` exactly (CNN/DM Lead-3 vs expert
45.54 / 21.92 / 39.37; XSum Lead-1 vs expert 35.35 / 14.78 / 27.46). ``rag.nlp.text.split_sentences``
does not (CNN/DM Lead-3 29.9 R-1): three quarters of those articles are lower-cased and
tokenised, and it never ends a sentence before a lower-case word. Untrained nltk Punkt
is close but not exact (45.63 / 21.93 / 39.44, up to 0.09 off).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from rouge_score import rouge_scorer

from rag.evaluation.qa_metrics import normalize_answer
from rag.nlp.text import STOPWORDS, word_count

ROUGE_TYPES = ("rouge1", "rouge2", "rougeLsum")
_SPLIT = re.compile(r"(?<=[.!?])\s+")


def split_simple(text: str) -> list[str]:
    """Sentences: break at newlines and after ``.``/``!``/``?`` followed by whitespace."""
    out: list[str] = []
    for line in text.splitlines():
        out.extend(s for s in _SPLIT.split(line.strip()) if s)
    return out


def rouge_text(text: str) -> str:
    """One sentence per line, as ``rougeLsum`` expects (summary-level LCS over newline-split sentences)."""
    return "\n".join(split_simple(text))


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge(prediction: str, references: str | Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/Lsum F1 (fractions) with Google ``rouge-score``, Porter stemming, sentences
    newline-split by ``split_simple``; with several references, the best F1 per type."""
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("rouge needs at least one reference")
    pred = rouge_text(prediction)
    best = dict.fromkeys(ROUGE_TYPES, 0.0)
    for ref in refs:
        scores = _scorer().score(rouge_text(ref), pred)
        for name in ROUGE_TYPES:
            best[name] = max(best[name], scores[name].fmeasure)
    return best


def lead_k(text: str, k: int, splitter: Callable[[str], list[str]] = split_simple) -> str:
    """The first ``k`` sentences of ``text`` (the Lead-3 / Lead-1 baseline), joined by spaces."""
    return " ".join(splitter(text)[:k])


# --- key facts ----------------------------------------------------------------------------

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\b(?:{_MONTH} {_DAY}(?:,? \d{{4}})?|{_DAY} (?:of )?{_MONTH}(?:,? \d{{4}})?|{_MONTH} \d{{4}}|"
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)|(?:1[89]|20)\d\d)\b"
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:%| per ?cent)?")
_CAP = re.compile(r"\b[A-Z][A-Za-z\u00c0-\u024f'\u2019.-]*")


def _name_runs(sentence: str) -> list[tuple[bool, list[str]]]:
    """Runs of capitalised words separated only by spaces: (run starts the sentence, words)."""
    runs: list[tuple[bool, list[str]]] = []
    prev_end: int | None = None
    for m in _CAP.finditer(sentence):
        raw = m.group()
        word = re.sub(r"['\u2019]s$", "", raw).rstrip(".-'\u2019")
        if prev_end is not None and sentence[prev_end : m.start()].isspace():
            runs[-1][1].append(word)
        else:
            runs.append((not sentence[: m.start()].strip(), [word]))
        prev_end = None if raw.endswith(("'s", "\u2019s")) else m.end()
    return runs


def key_facts(reference: str) -> list[str]:
    """The checkable facts of a reference: dates, numbers and names, in order, deduplicated.

    Dates: month-day(-year), day-month(-year), month-year, weekdays, years 1800-2099.
    Numbers: digits with separators, optionally a percent (a currency sign is left out). Names: runs of
    adjacent capitalised words, a leading stop word ("The") dropped; a single
    capitalised word that starts a sentence counts only if it also appears capitalised
    mid-sentence somewhere in the reference (so "Afterwards" is not a name). Needs a
    cased reference: lower-cased text yields numbers and dates only.
    """
    facts: list[str] = []
    mid_caps: set[str] = set()
    sentences = split_simple(reference)
    for sentence in sentences:
        for starts, run in _name_runs(sentence):
            if not starts:
                mid_caps.update(run)
    for sentence in sentences:
        rest = sentence
        for m in _DATE.finditer(sentence):
            facts.append(m.group())
            rest = rest.replace(m.group(), " ; ", 1)
        facts.extend(m.group() for m in _NUMBER.finditer(rest))
        for starts, run in _name_runs(_NUMBER.sub(" ; ", rest)):
            if starts and run[0].lower() in STOPWORDS:
                run = run[1:]
            if not run or (starts and len(run) == 1 and run[0] not in mid_caps):
                continue
            facts.append(" ".join(run))
    seen: dict[str, str] = {}
    for fact in facts:
        seen.setdefault(normalize_answer(fact), fact)
    return [f for n, f in seen.items() if n]


def fact_in_text(fact: str, text: str) -> bool:
    """A fact occurs in a text: its normalised tokens appear contiguously in the normalised text."""
    f = normalize_answer(fact)
    return bool(f) and f" {f} " in f" {normalize_answer(text)} "


def key_fact_recall(brief: str, facts: Sequence[str]) -> float:
    """Share of key facts (see ``key_facts``) found in the brief by ``fact_in_text``; 1.0 with no facts."""
    if not facts:
        return 1.0
    return sum(fact_in_text(f, brief) for f in facts) / len(facts)


def length_compliance(brief: str, max_words: int, min_words: int = 0) -> dict[str, float | bool | int]:
    """Whether the brief's word count is within [min_words, max_words], and words / max_words."""
    n = word_count(brief)
    return {
        "ok": min_words <= n <= max_words,
        "ratio": n / max_words if max_words else float("inf"),
        "words": n,
    }
