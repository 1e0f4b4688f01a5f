"""Rule-based extraction of people, organisations, places, dates, figures and agreements.

Used by the extractive (no-LLM) structured summary. Every item carries the span
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
from rag.nlp.dates import find_dates
from rag.summarize.centrality import Candidate
from rag.summarize.structured import citation_dict, finish_summary, sort_key
from rag.nlp.text import STOPWORDS, Sentence, containment, fold, shingles, split_sentences
from rag.types import Document

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
    " exchange embassy consulate alliance coalition"
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
class Extracted:
    """Everything the rules found, per field."""

    people: list[Mention] = field(default_factory=list)
    organisations: list[Mention] = field(default_factory=list)
    places: list[Mention] = field(default_factory=list)
    timeline: list[Mention] = field(default_factory=list)
    figures: list[Mention] = field(default_factory=list)
    agreements: list[Mention] = field(default_factory=list)


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


def _clean(value: str) -> str:
    return value.strip(" ,;:.\"'\u201c\u201d\u2018\u2019()")


# --- people ----------------------------------------------------------------------

_TITLE_QUALIFIERS = (
    "First Second Senior Joint Additional Acting Executive Managing Principal Deputy Vice Chief Foreign "
    "Defence Defense Prime"
).split()
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


def extract(texts: list[str], *, threshold: float = 0.8) -> Extracted:
    """Run every rule over the unique sentences of each text."""
    found = Extracted()
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

_REASONS = {
    "key_points": "the reports have no further sentences worth listing",
    "people": "no titled names found (extractive mode lists only names given with a title or role)",
    "organisations": "no organisation names or acronyms found",
    "places": "no place named after 'in', 'at' or 'near'",
    "timeline": "no dates with a month name or in ISO form "
    "(relative dates such as 'on Monday' are not resolved)",
    "agreements": "no sentence about an agreement, a signature or a decision",
    "figures": "no figures written in digits",
    "open_questions": "extractive mode does not infer what the reports leave unsaid (use LLM mode)",
}


def _merged(mentions: list[Mention], key: str, docs: list[Document]) -> list[dict]:
    """One item per name (folded): the first mention, gaps filled from later ones, one citation per report."""
    items: dict[str, dict] = {}
    cited: dict[str, set[int]] = {}
    for m in mentions:
        k = fold(str(m.fields[key])).strip()
        if k not in items:
            items[k] = {**m.fields, "citations": []}
            cited[k] = set()
        item = items[k]
        for f, v in m.fields.items():
            if item.get(f) is None and v is not None:
                item[f] = v
        if m.doc not in cited[k]:
            cited[k].add(m.doc)
            item["citations"].append(citation_dict(docs[m.doc], m.start, m.end))
    return list(items.values())


def _statement(docs: list[Document], doc: int, start: int, end: int) -> dict:
    return {"text": docs[doc].text[start:end], "citations": [citation_dict(docs[doc], start, end)]}


def build_extractive_summary(
    docs: list[Document], brief: list[Candidate], points: list[Candidate], *, threshold: float = 0.8
) -> dict:
    """The structured summary from rules and extracted sentences only; empty fields say why."""
    found = extract([d.text for d in docs], threshold=threshold)
    if brief:
        bottom = _statement(docs, brief[0].doc, brief[0].start, brief[0].end)
    else:  # no candidate sentence: the first sentence of the first report with text
        d = next(i for i, doc in enumerate(docs) if doc.text.strip())
        first = split_sentences(docs[d].text)[0]
        bottom = _statement(docs, d, first.start, first.end)
    bottom_span = (bottom["citations"][0]["source"], bottom["citations"][0]["start"])
    out: dict = {
        "title": docs[0].title or docs[0].source
        if len(docs) == 1
        else f"{len(docs)} reports: " + "; ".join((d.title or d.source) for d in docs[:3]),
        "bottom_line": bottom,
        "key_points": [
            _statement(docs, c.doc, c.start, c.end)
            for c in points
            if (docs[c.doc].source, c.start) != bottom_span
        ],
        "people": _merged(found.people, "name", docs),
        "organisations": _merged(found.organisations, "name", docs),
        "places": _merged(found.places, "name", docs),
        "timeline": [
            {**m.fields, "citations": [citation_dict(docs[m.doc], m.start, m.end)]} for m in found.timeline
        ],
        "agreements": [_statement(docs, m.doc, m.start, m.end) for m in found.agreements],
        "figures": [
            {**m.fields, "citations": [citation_dict(docs[m.doc], m.start, m.end)]} for m in found.figures
        ],
        "open_questions": [],
    }
    return finish_summary(out, docs, "extractive", None, _REASONS)
