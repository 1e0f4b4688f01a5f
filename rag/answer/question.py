"""Question analysis: what a question asks for.

``analyse_question`` finds a question's content words, its key terms (names and
numbers the passages must mention) and the type of answer it expects; the
extractive answerer scores sentences with it. Follow-ups are rewritten into
standalone questions first (``rag.answer.followups``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.nlp.claims import extract_facts
from rag.nlp.text import WORD_RE, content_words, fold, match_stem, words

KEY_TERM_WEIGHT = 2.0  # weight of a name or number in the question, relative to an ordinary content word
# Words that shape a question but never its answer.
_QUESTION_FILLER = frozenset(
    "name named called happen happened kind type many much mean really tell know describe explain".split()
)
_ROLE_WORDS = r"(?:position|title|job|role|post|rank|office|designation)s?"  # "What position does X hold?"
_AUX = r"(?:did|do|does|was|were|is|are|will|would|could|can|had|has|have|should|might)"


@dataclass
class Question:
    """What the scorer needs to know about a question."""

    text: str
    terms: dict[str, float]  # stemmed content word -> weight
    key_terms: dict[
        str, str
    ]  # stemmed token of a name or number -> the word as asked (passages must mention it)
    answer_type: str | None  # "person", "date", "number", "place", "role" or None (see ``answer_type``)


def analyse_question(question: str) -> Question:
    """Content words with weights, key terms (names and numbers) and the expected answer type."""
    facts = extract_facts(question)
    # stemmed, folded token -> the token as asked (shown when the passages lack it)
    key = {
        match_stem(words(w)[0]): w
        for n in facts.names + facts.numbers + facts.dates
        for w in WORD_RE.findall(n)
        if words(w)[0] not in _QUESTION_FILLER and len(w) > 1
    }
    terms: dict[str, float] = {}
    for w in content_words(fold(question)):
        s = match_stem(w)
        if w in _QUESTION_FILLER or s in _QUESTION_FILLER:
            continue
        terms[s] = KEY_TERM_WEIGHT if s in key else 1.0
    return Question(question, terms, key, answer_type(question))


def answer_type(question: str) -> str | None:
    """The kind of thing a question asks for, from its wh-phrase ("when" only as a question word):
    "number", "date", "place", "role" (a person's title or position) or "person"."""
    q = fold(question).strip()
    if re.search(
        r"\bhow (?:many|much|long|old|far|often|large|big)\b|\bwhat (?:number|percentage|share|amount)\b", q
    ):
        return "number"
    if re.search(
        rf"\bwhen {_AUX}\b|\bwhat (?:year|date|day|month|time)\b|\b(?:which|what) (?:year|century|decade)", q
    ):
        return "date"
    if re.search(
        r"\bwhere\b|\bwhat (?:city|country|place|venue|location)\b|\bwhich (?:city|country|place)\b", q
    ):
        return "place"
    if re.search(
        rf"\bwhat (?:is|was|are|were)\b.*'s {_ROLE_WORDS}\b|\b(?:what|which) {_ROLE_WORDS} {_AUX}\b", q
    ):
        return "role"
    if re.search(r"\bwho(?:m|se)?\b", q):
        return "person"
    return None


def is_yes_no(question: str) -> bool:
    """Whether a question asks for yes or no: it opens with an auxiliary verb and offers no
    alternatives to choose between ("Did X say...?" yes; "Was it X or Y?" no, that asks which)."""
    q = fold(question).strip().lower()
    return bool(re.match(rf"{_AUX}(?:n't|n’t)?\b", q)) and not re.search(r",?\s\bor\b\s[^?]*\?\s*$", q)
