"""Entities: the one place for names, titles and organisations, and the rule-based finders.

The word lists below (titles, qualifiers, honorifics, organisation words) are the only
ones in Dossier; the question analysis' person test (``looks_like_person``) and the
finders of people, organisations, places, dates, figures and agreements all use them.
The finders feed the extractive (no-LLM) structured summary. Every item carries the span
of the sentence it came from, so it can be cited. The rules only fire on forms
that are reliable in news and press releases: titled names ("Sanjeev Kumar,
Secretary of Defence Production", "D.K. Sunil, CMD (HAL)", "Lt Gen Dylevsky Igor
Nikolaevich, Deputy Chief of ..."), organisation names with an organisation word
or an acronym, places after a locative preposition, dates with a month name or
ISO form (``rag.nlp.dates``), figures written in digits. What they cannot find stays
empty; nothing is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.nlp.claims import MONTHS
from rag.nlp.dates import find_dates, sort_key
from rag.nlp.text import STOPWORDS, Sentence, unique_sentences

# --- shared pieces ---------------------------------------------------------------

_NAME_TOKEN = (
    r"(?:(?:[A-Z]\.){1,3}\s?[A-Z][a-z\u00e0-\u024f'\u2019-]+|[A-Z]\.|[A-Z][a-z\u00e0-\u024f'\u2019-]+)"
)
_PERSON_NAME = (
    r"(?:[A-Z]\.\s?){1,3}[A-Z][a-z\u00e0-\u024f'\u2019-]+"  # "D.K. Sunil"
    r"(?:\s[A-Z][a-z\u00e0-\u024f'\u2019-]+)?"
    rf"|{_NAME_TOKEN}(?:\s(?:(?:de|van|von|bin|al|da|del|der|le)\s)?{_NAME_TOKEN}){{1,3}}"
)
_RANKS = (
    r"(?:Lt\.?\s?Gen|Lieutenant General|Maj\.?\s?Gen|Major General|Brig\.?\s?Gen|Gen|General|Col|Colonel"
    r"|Adm|Admiral|Vice Admiral|Air Marshal|Air Chief Marshal|Capt|Captain|Dr|Prof|Professor|Mr|Mrs|Ms|Sir"
    r"|Dame|Lord|Lady|Justice)\.?"
)
_TITLE_WORDS = (
    "secretary minister director deputy chief president vice chairman chairwoman chairperson chair head"
    " ceo cmd cfo coo cto md chancellor governor ambassador envoy spokesperson spokesman spokeswoman"
    " commander officer manager founder partner editor analyst economist professor advisor adviser"
    " general counsel attache undersecretary"
    " premier mayor senator judge commissioner administrator coordinator lead principal executive"
).split()
_ORG_WORDS = (
    "ministry department commission committee council group agency authority bureau office directorate"
    " corporation corp company co inc ltd llc plc jsc bank fund university institute institution association"
    " organisation organization federation union party parliament government court police army navy"
    " force forces"
    " command staff service services plant factory works limited holdings board foundation club league"
    " exchange embassy consulate alliance coalition working"
).split()
_NOT_ACRONYMS = frozenset(
    "CMD CEO CFO COO CTO MD MP TV AM PM OK US UK UN EU AI IT HR PR GDP ID II III IV VI".split()
)
_ACRONYM = re.compile(r"(?<![\w&-])[A-Z][A-Z0-9]*(?:[&-][A-Z0-9]+)*[A-Z0-9](?![\w&-])")
_CAP_RUN = re.compile(r"[A-Z][\w&'\u2019.-]*(?:\s+(?:(?:of|for|and|the|de|on)\s+)*[A-Z][\w&'\u2019.-]*)*")


@dataclass
class Mention:
    """One extracted item with the span of the sentence it rests on."""

    fields: dict[str, str | None]
    doc: int  # index of the document in the list given to ``extract``
    start: int
    end: int
    sort_key: str = ""


@dataclass
class Mentions:
    """Everything the rules found, per field."""

    people: list[Mention] = field(default_factory=list)
    organisations: list[Mention] = field(default_factory=list)
    places: list[Mention] = field(default_factory=list)
    timeline: list[Mention] = field(default_factory=list)
    figures: list[Mention] = field(default_factory=list)
    agreements: list[Mention] = field(default_factory=list)


def _clean(value: str) -> str:
    return value.strip(" ,;:.\"'\u201c\u201d\u2018\u2019()")


# --- people ----------------------------------------------------------------------

_TITLE_QUALIFIERS = (
    "First Second Senior Junior Joint Additional Acting Executive Managing Principal Deputy Vice Chief "
    "Foreign Defence Defense Prime"
).split()
# Abbreviated ranks and honorifics (the spelled-out ranks are in _RANKS).
_HONORIFICS = frozenset("lt gen col maj mr mrs ms dr prof sir".split())
# Every word that can be part of a title and never of a name.
TITLE_TOKENS = frozenset(_TITLE_WORDS) | {w.lower() for w in _TITLE_QUALIFIERS} | _HONORIFICS
ORG_WORDS = frozenset(_ORG_WORDS)


def looks_like_person(name: str) -> bool:
    """Two or more capitalised tokens, no organisation word or "of", not only titles, not an acronym."""
    toks = [t.lower().strip(".") for t in name.replace(".", ". ").split()]
    if len(toks) < 2 or any(t in ORG_WORDS or t in ("of", "the") for t in toks):
        return False
    if all(t in TITLE_TOKENS for t in toks):
        return False
    return not all(t.isupper() for t in name.split())


_TITLE_START = rf"(?:(?:{'|'.join(_TITLE_QUALIFIERS)})\s+)*"
_TITLE_WORD = "|".join([w.capitalize() for w in _TITLE_WORDS] + [w.upper() for w in _TITLE_WORDS])
_TITLE_PHRASE = rf"{_TITLE_START}(?:{_TITLE_WORD})\b[^,.;:()\n\u201d\"]{{0,80}}"
_NAME_THEN_TITLE = re.compile(
    rf"(?:(?P<rank>{_RANKS})\s+)?(?P<name>(?:{_PERSON_NAME})),\s+(?P<title>{_TITLE_PHRASE})"
    rf"(?:\s*\((?P<paren>[A-Z][\w&.-]{{1,20}})\)|,\s+(?P<org>[A-Z][A-Za-z&.-]{{1,30}}(?:\s[A-Z][A-Za-z&.-]+){{0,3}})(?=[\s,.;:\u201d\"]|$))?"
)
_TITLE_THEN_NAME = re.compile(
    rf"\b(?P<title>(?:[A-Z][a-z]+\s+){{0,3}}(?:{'|'.join(w.capitalize() for w in _TITLE_WORDS)}))"
    rf"\s+(?P<name>(?:{_PERSON_NAME}))"
)


def _split_affiliation(title: str) -> tuple[str, str | None]:
    """Split "Secretary of Defence Production from the Indian side" into title and affiliation."""
    m = re.search(r"\s+(?:from|at|with)\s+(?:the\s+)?(?P<aff>[A-Z][\w&.-]*(?:\s+[\w&.-]+){0,3})$", title)
    if m:
        return title[: m.start()], m.group("aff")
    m = re.search(r"\s+of\s+(?:the\s+)?(?P<aff>[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*)*)$", title)
    if m and any(w.lower() in _ORG_WORDS for w in m.group("aff").split()):
        return title, m.group("aff")
    return title, None


def _person(m: re.Match[str], sent: Sentence, doc: int) -> Mention | None:
    name = _clean(m.group("name"))
    if name.split()[0].lower() in STOPWORDS or any(w.lower() in _ORG_WORDS for w in name.split()):
        return None
    title, affiliation = _split_affiliation(_clean(m.group("title")))
    groups = m.groupdict()
    affiliation = groups.get("paren") or groups.get("org") or affiliation
    rank = groups.get("rank")
    full = f"{_clean(rank)} {name}" if rank else name
    return Mention(
        {"name": full, "title": title or None, "affiliation": affiliation and _clean(affiliation)},
        doc,
        sent.start,
        sent.end,
    )


def find_people(sent: Sentence, doc: int) -> list[Mention]:
    """Titled people in one sentence: "Name, Title[, Org | (Org)]" and "Title Name"."""
    out = [p for m in _NAME_THEN_TITLE.finditer(sent.text) if (p := _person(m, sent, doc))]
    for m in _TITLE_THEN_NAME.finditer(sent.text):
        name = _clean(m.group("name"))
        if any(name in str(p.fields["name"]) for p in out):  # already found as "Name, Title"
            continue
        if any(w.lower() in _ORG_WORDS for w in name.split()):
            continue
        out.append(
            Mention(
                {"name": name, "title": _clean(m.group("title")), "affiliation": None},
                doc,
                sent.start,
                sent.end,
            )
        )
    return out


# --- organisations and places -----------------------------------------------------------


def find_organisations(sent: Sentence, doc: int, people: list[Mention]) -> list[Mention]:
    """Capitalised names with an organisation word, and acronyms that are not titles."""
    names: list[str] = []
    for m in _CAP_RUN.finditer(sent.text):
        run = _trim_run(m.group(0))
        if run and any(w.lower().strip(".") in _ORG_WORDS for w in run.split()[1:] + run.split()[:1]):
            if len(run.split()) >= 2 or run.split()[0].lower() not in _ORG_WORDS:
                names.append(run)
    for m in _ACRONYM.finditer(sent.text):
        if (
            m.group(0) not in _NOT_ACRONYMS
            and len(m.group(0)) >= 2
            and not any(m.group(0) in n for n in names)
        ):
            names.append(m.group(0))
    person_names = {p.fields["name"] for p in people}
    return [Mention({"name": n}, doc, sent.start, sent.end) for n in names if n not in person_names]


def _trim_run(run: str) -> str:
    """Drop a leading sentence-start word ("The", "In") and trailing connectives from a capitalised run."""
    words = run.split()
    while words and (words[0].lower() in STOPWORDS or words[0].lower() in _TITLE_WORDS):
        words = words[1:]
    while words and words[-1].lower() in STOPWORDS:
        words.pop()
    return _clean(" ".join(words))


_PLACE = re.compile(
    r"\b(?:in|at|near|outside|inside|across|throughout)\s+(?P<place>[A-Z][a-z\u00e0-\u024f]+(?:[\s-][A-Z][a-z\u00e0-\u024f]+){0,2})"
)
_NOT_PLACES = frozenset(m.capitalize() for m in MONTHS) | frozenset(
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday "
    "January February March April May June July August "
    "September October November December Addition Total Fact General Particular Response Turn Order".split()
)


def find_places(sent: Sentence, doc: int) -> list[Mention]:
    """Places named after a locative preposition ("took place in Moscow", "at New Delhi")."""
    out: list[Mention] = []
    for m in _PLACE.finditer(sent.text):
        place = m.group("place")
        words = place.replace("-", " ").split()
        if words[0] in _NOT_PLACES or any(w.lower() in _ORG_WORDS for w in words):
            continue
        out.append(Mention({"name": place}, doc, sent.start, sent.end))
    return out


# --- dates, figures, agreements ---------------------------------------------------------


def find_timeline(sent: Sentence, doc: int) -> list[Mention]:
    """Dated events: each date in the sentence, with the sentence as the event."""
    out: list[Mention] = []
    for _s, _e, value, surface in find_dates(sent.text):
        out.append(
            Mention(
                {"date": value, "date_text": surface, "event": sent.text},
                doc,
                sent.start,
                sent.end,
                sort_key(value),
            )
        )
    return out


_SCALE = r"(?:\s?(?:million|billion|trillion|bn|m|k|crore|lakh|per\s?cent|percent|%))?"
_FIGURE = re.compile(
    rf"(?<![\w.,/-])(?P<value>(?:[$\u00a3\u20ac\u00a5\u20b9]\s?|(?:US|Rs\.?|INR|USD|EUR|GBP)\s?)?\d[\d,]*(?:\.\d+)?{_SCALE})(?![\w/])"
    r"(?=(?P<rest>[^.;:!?\n]{0,60}))"
)
_WHAT = re.compile(r"\s*(?:(?:of|in)\s+)?(?P<what>(?:[a-z][\w-]*\s*){1,4})")
_AGREEMENT = re.compile(
    r"\b(?:agree(?:d|ment|ments|s)?|sign(?:ed|ing)|protocol|memorandum|mou|treaty|accord|deal|contract"
    r"|decid(?:ed|es)|decision|approv(?:ed|al)|ratif(?:ied|y)|resolv(?:ed|ution)|reaffirm(?:ed|s)?|commit(?:ted|ment))\b",
    re.IGNORECASE,
)


def find_figures(sent: Sentence, doc: int) -> list[Mention]:
    """Numbers written in digits with what they count; years, ordinals and dates are left out."""
    date_spans = [(s, e) for s, e, _v, _t in find_dates(sent.text)]
    out: list[Mention] = []
    for m in _FIGURE.finditer(sent.text):
        value = m.group("value").strip()
        if any(s <= m.start() < e for s, e in date_spans) or re.fullmatch(r"(?:1[89]|20)\d\d", value):
            continue
        if re.match(r"(?:st|nd|rd|th)\b", sent.text[m.end("value") :]):
            continue
        what = _what(m.group("rest"))
        out.append(Mention({"value": value, "what": what}, doc, sent.start, sent.end))
    return out


def _what(rest: str) -> str | None:
    """The noun phrase after a number ("people", "tons of illegal narcotics"), stopping at function words."""
    m = _WHAT.match(rest)
    if not m:
        return None
    words: list[str] = []
    for w in m.group("what").split():
        if w.lower() in STOPWORDS and w.lower() != "of":
            break
        words.append(w)
    while words and words[-1] == "of":
        words.pop()
    return " ".join(words) or None


def extract(texts: list[str], *, threshold: float = 0.8) -> Mentions:
    """Run every rule over the unique sentences of each text."""
    found = Mentions()
    for doc, text in enumerate(texts):
        for sent in unique_sentences(text, threshold=threshold):
            people = find_people(sent, doc)
            found.people += people
            found.organisations += find_organisations(sent, doc, people)
            found.places += find_places(sent, doc)
            found.timeline += find_timeline(sent, doc)
            found.figures += find_figures(sent, doc)
            if _AGREEMENT.search(sent.text):
                found.agreements.append(Mention({"text": sent.text}, doc, sent.start, sent.end))
    found.timeline.sort(key=lambda m: m.sort_key)
    return found


# --- the extractive structured summary ------------------------------------------------------
