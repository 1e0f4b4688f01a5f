"""Claim checking: does a sentence rest on the passages it cites?

Used by answers and briefs in both modes. A sentence is *supported* when it cites
at least one passage, enough of its content words occur in the cited passages,
and every number, date and proper name in it occurs there too. Matching is on
folded text (case, quote and dash style ignored) so typographic variants match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.nlp.text import STOPWORDS, content_words, fold, stem, words

MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
).split()
_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
_DATE_RE = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTH_RE})\.?(?:,?\s+\d{{4}})?"
    rf"|(?:{_MONTH_RE})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|(?:{_MONTH_RE})\.?\s+\d{{4}}"
    rf"|\d{{4}}-\d{{2}}-\d{{2}})\b",
    re.IGNORECASE,
)
_NUMBER_RE = re.compile(
    r"(?<![\w.])[-+]?\$?\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|%|bn|m|k)?(?![\w])", re.IGNORECASE
)
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred "
    "thousand million billion trillion first second third fourth fifth sixth seventh eighth ninth tenth dozen".split()
)
# A capitalised token: a word, an initial ("A."), initials ("D.K."), hyphenated ("UEC-Klimov"), acronyms.
_CAP_TOKEN = r"(?:(?:[A-Z]\.){2,4}|[A-Z][a-zA-Z\u00c0-\u024f'\u2019]*(?:-[A-Za-z\u00c0-\u024f]+)*\.?)"
_NAME_RE = re.compile(rf"{_CAP_TOKEN}(?:\s+(?:(?:of|de|van|von|al|bin|da|the)\s+)?{_CAP_TOKEN})*")


@dataclass
class Facts:
    """The checkable facts of a sentence."""

    numbers: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    """Outcome of checking one sentence against its cited passages."""

    supported: bool
    overlap: float
    problems: list[str]


def extract_facts(sentence: str) -> Facts:
    """Numbers, dates and proper names stated in ``sentence``."""
    facts = Facts()
    for m in _DATE_RE.finditer(sentence):
        facts.dates.append(m.group(0))
    date_spans = [m.span() for m in _DATE_RE.finditer(sentence)]
    for m in _NUMBER_RE.finditer(sentence):
        if not any(a <= m.start() < b for a, b in date_spans):
            facts.numbers.append(m.group(0).strip("+"))
    facts.names = _names(sentence)
    return facts


def _names(sentence: str) -> list[str]:
    """Capitalised runs that look like names of people, organisations or places."""
    out: list[str] = []
    first_word = re.match(r"\W*(\w+)", sentence)
    first_start = first_word.start(1) if first_word else -1
    for m in _NAME_RE.finditer(sentence):
        tokens = m.group(0).split()
        if m.start() == first_start:
            # The first word of a sentence is capitalised anyway: drop it when it is an ordinary word.
            while tokens and (
                tokens[0].lower().strip(".") in STOPWORDS or tokens[0].lower() in _COMMON_STARTS
            ):
                tokens = tokens[1:]
        while tokens and tokens[-1].lower() in STOPWORDS:
            tokens.pop()
        name = " ".join(tokens).rstrip(".")
        if not name or name.lower() in STOPWORDS or name.lower() in _NUMBER_WORDS or name.lower() in MONTHS:
            continue
        if name.lower() in _COMMON_STARTS:
            continue
        out.append(name)
    return out


_COMMON_STARTS = frozenset(
    """however meanwhile also although though but and yes no in on at after before during while when
    officials sources both another this that these those its it he she they we there here today yesterday
    tomorrow according reports report earlier later last next several many some most all each""".split()
)


def _present(needle: str, passage_folded: str, passage_words: list[str]) -> bool:
    """True when ``needle`` occurs in the passage as a phrase (folded, whitespace-tolerant)."""
    f = fold(needle).strip()
    if f and f in passage_folded:
        return True
    toks = words(needle)
    if not toks:
        return True
    n = len(toks)
    return any(passage_words[i : i + n] == toks for i in range(len(passage_words) - n + 1))


def _number_present(num: str, passage_folded: str) -> bool:
    """Numbers match ignoring thousands separators and currency signs."""
    core = re.sub(r"[,$]", "", num.lower())
    return core in re.sub(r"(?<=\d),(?=\d)", "", passage_folded).replace("$", "")


def overlap(sentence: str, passages_text: str) -> float:
    """Share of the sentence's content words (lightly stemmed) found in the passages."""
    sent = {stem(w) for w in content_words(sentence)}
    if not sent:
        return 1.0
    have = {stem(w) for w in content_words(passages_text)}
    return len(sent & have) / len(sent)


def check_sentence(sentence: str, passages: list[str], *, min_overlap: float = 0.5) -> Verdict:
    """Check one sentence against the texts of the passages it cites."""
    problems: list[str] = []
    if not passages:
        return Verdict(False, 0.0, ["cites no passage"])
    joined = "\n".join(passages)
    folded = fold(joined)
    pwords = words(joined)
    facts = extract_facts(sentence)
    for num in facts.numbers:
        if not _number_present(num, folded):
            problems.append(f'number "{num}" is not in the cited passages')
    for date in facts.dates:
        if not _present(date, folded, pwords):
            problems.append(f'date "{date}" is not in the cited passages')
    for name in facts.names:
        if not _present(name, folded, pwords):
            problems.append(f'name "{name}" is not in the cited passages')
    ov = overlap(sentence, joined)
    if ov < min_overlap:
        problems.append(f"only {ov:.0%} of its content words are in the cited passages")
    return Verdict(not problems, round(ov, 3), problems)
