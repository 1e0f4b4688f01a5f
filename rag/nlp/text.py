"""Text utilities shared by every stage: normalisation, matching, sentences.

``normalize`` runs once, at load time; the result is the stored text that all
spans point into. ``fold`` maps a text to a *matchable* form of the same length
(typographic quotes and dashes to ASCII, lower case), so an index found in the
folded text is the index in the original.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

_FOLD_MAP = {
    **{c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\u301d\u301e\uff02"},
    **{c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u0060\u00b4\u2039\u203a\uff07"},
    **{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"},
    **{c: " " for c in "\u00a0\u2007\u202f\u2009\u200a\u2002\u2003\u2004\u2005\u2006\u2008\u205f\u3000"},
    "\u2026": ".",  # one char to one char keeps spans aligned
}
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize(text: str) -> str:
    """Normalise a loaded report once: NFC, one newline style, tidy whitespace.

    Typographic quotes are kept as they are (``fold`` makes them matchable).
    Paragraphs are separated by one blank line; runs of spaces become one space.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = text.translate(_ZERO_WIDTH)
    text = _CONTROL.sub(" ", text)
    text = re.sub(r"[ \t\f\v\u00a0\u2007\u202f\u3000]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    # Compose last: removing zero-width and control characters can bring combining marks together.
    return unicodedata.normalize("NFC", text.strip())


def _fold_char(c: str) -> str:
    mapped = _FOLD_MAP.get(c)
    if mapped is not None:
        return mapped
    low = c.lower()
    return low if len(low) == 1 else c


def fold(text: str) -> str:
    """Matchable form of ``text`` with exactly the same length (spans stay valid)."""
    return "".join(_fold_char(c) for c in text)


def find_folded(haystack: str, needle: str, start: int = 0) -> int:
    """Index of ``needle`` in ``haystack`` ignoring case, quote and dash style; -1 if absent."""
    return fold(haystack).find(fold(needle), start)


def find_quote(haystack: str, quote: str) -> tuple[int, int] | None:
    """Span of ``quote`` in ``haystack``: exact, then folded, then whitespace-insensitive."""
    quote = quote.strip()
    if not quote:
        return None
    i = haystack.find(quote)
    if i >= 0:
        return i, i + len(quote)
    i = find_folded(haystack, quote)
    if i >= 0:
        return i, i + len(quote)
    # whitespace-insensitive: match token by token on the folded text
    words = fold(quote).split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    m = re.search(pattern, fold(haystack))
    return (m.start(), m.end()) if m else None


# --- words -------------------------------------------------------------------

WORD_RE = re.compile(r"[A-Za-z\u00c0-\u024f0-9]+(?:['\u2019][A-Za-z]+)?")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
    not now of off on once only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself yourselves said says
    say according mentioned added include includes including per via among amongst upon whose whether within
    without one two also may might must shall us s t""".split()
)


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters and digits), quotes and punctuation dropped."""
    return [w.lower().replace("\u2019", "'") for w in WORD_RE.findall(text)]


def content_words(text: str) -> list[str]:
    """Words minus stop words: what a sentence is about."""
    return [w for w in words(text) if w not in STOPWORDS]


def stem(w: str) -> str:
    """A light suffix stripper, so "meetings" matches "meeting" (no dictionary needed)."""
    for suffix in ("ingly", "ings", "ing", "edly", "ed", "ies", "es", "s", "ly"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


_DERIVED = ("ments", "ment", "ations", "ation", "tions", "tion")


def match_stem(w: str) -> str:
    """``stem`` plus derivational endings and a final "e", so a question's "develop and produce"
    meets a report's "development and production". For matching question words to sentences only:
    the BM25 index keeps ``stem`` (its saved snapshots depend on it). Chosen on the dev splits of
    SQuAD 2.0 and MultiHop-RAG (best-sentence accuracy +0.6 and +1.1 points; test splits unchanged)."""
    w = stem(w)
    for suffix in _DERIVED:
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            w = w[: -len(suffix)]
            break
    return w[:-1] if len(w) > 4 and w.endswith("e") else w


def shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    """Word n-grams of the folded text, for near-duplicate detection."""
    toks = words(fold(text))
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def containment(a: set, b: set) -> float:
    """Share of the smaller shingle set contained in the other (0 when either is empty)."""
    if not a or not b:
        return 0.0
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & big) / len(small)


# --- sentences -----------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt gen lt col maj capt cmdr adm sgt cpl pvt gov sen rep pres supt insp det
    rev hon fr no nos vol vols fig figs al etc vs approx dept est inc ltd corp co bros jan feb mar apr jun jul aug
    sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun u.s u.k u.n e.g i.e a.m p.m cf ca op ed eds""".split()
)
# The lookbehind starts matches only at the start of a run of stops: linear on "......" leaders.
_SENT_END = re.compile(r"(?<![.!?\u2026])[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|$)")
_NEXT_CHAR = re.compile(r"\s*(\S)")


@dataclass(frozen=True)
class Sentence:
    """A sentence with its ``[start, end)`` span in the text it came from."""

    start: int
    end: int
    text: str


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at ``dot`` ends an abbreviation or an initial, not a sentence."""
    m = re.search(r"([A-Za-z][A-Za-z.]*)$", text[max(0, dot - 12) : dot])
    if not m:
        return False
    token = m.group(1)
    low = token.lower().rstrip(".")
    if low in _ABBREVIATIONS:
        return True
    if len(token) == 1 and token.isupper():  # an initial: "D. Sunil", "J. Smith"
        return True
    return bool(re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", token))  # "D.K", "U.S"


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Split ``text`` into sentences with spans (shifted by ``offset``).

    Paragraph breaks always end a sentence; a period ends one unless it closes an
    abbreviation or initial, or the next word starts in lower case.
    """
    out: list[Sentence] = []
    for para_start, para_end in _paragraphs(text):
        start = para_start
        for m in _SENT_END.finditer(text, para_start, para_end):
            end = m.end()
            nxt = _NEXT_CHAR.match(text, end, para_end)  # no slicing: linear on long paragraphs
            if nxt is None:
                continue  # paragraph end handles it
            first = nxt.group(1)
            if text[m.start()] == "." and m.end() - m.start() == 1 and _is_abbreviation(text, m.start()):
                continue
            if first.islower():
                continue
            _emit(out, text, start, end, offset)
            start = end
        _emit(out, text, start, para_end, offset)
    return out


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    pos = 0
    for m in re.finditer(r"\n\s*\n|\n(?=\s*[-*\u2022]\s)", text):
        yield pos, m.start()
        pos = m.end()
    yield pos, len(text)


def _emit(out: list[Sentence], text: str, start: int, end: int, offset: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append(Sentence(start + offset, end + offset, text[start:end]))


def word_count(text: str) -> int:
    """Words as a reader counts them (whitespace-separated tokens with a letter or digit)."""
    return sum(1 for t in text.split() if re.search(r"\w", t))


def unique_sentences(text: str, *, threshold: float = 0.8) -> list[Sentence]:
    """Sentences of ``text`` with repeats dropped: a paragraph quoted twice, in other quotes, counts once."""
    kept: list[tuple[Sentence, set]] = []
    for sent in split_sentences(text):
        sh = shingles(sent.text)
        folded = fold(sent.text).strip(" \"'")
        if any(
            containment(sh, other) >= threshold or fold(k.text).strip(" \"'") == folded for k, other in kept
        ):
            continue
        kept.append((sent, sh))
    return [s for s, _ in kept]
