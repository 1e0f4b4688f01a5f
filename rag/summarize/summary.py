"""The structured summary (``rag.types.Summary``): the extractive one built from rules, and what both modes share.

Extractive mode fills the fields from the rule-based finders (``rag.nlp.entities``) and
the centrality-ranked sentences (``rag.summarize.centrality``); every item carries the
span of the sentence it rests on, so it can be cited. What the rules cannot find stays
empty, with the reason in ``unfilled``; nothing is guessed. LLM mode builds its summary
from a validated reply (``rag.summarize.llm_reply``) and finishes it here too.
"""

from __future__ import annotations

from typing import Any, cast

from rag.nlp.entities import Mention, extract
from rag.nlp.text import fold, split_sentences
from rag.summarize.centrality import SummaryCandidate
from rag.summarize.schema import ITEM_FIELDS
from rag.types import Document, Summary, SummaryCitation


def citation_dict(doc: Document, start: int, end: int) -> SummaryCitation:
    """A summary citation: source, span and the exact quote."""
    return {"source": doc.source, "start": start, "end": end, "quote": doc.text[start:end]}


def finish_summary(
    out: dict[str, Any], docs: list[Document], mode: str, notice: str | None, reasons: dict[str, str]
) -> Summary:
    """Add sources, mode, notice and the list of empty fields (with ``reasons`` or a default)."""
    out["sources"] = [
        {"source": d.source, "title": d.title, "date": d.date, "doc_id": d.doc_id} for d in docs
    ]
    out["mode"] = mode
    out["notice"] = notice
    default = "the reports do not give any" if mode == "llm" else "no reliable rule found any"
    out["unfilled"] = [
        {"field": name, "reason": reasons.get(name, default)} for name in ITEM_FIELDS if not out[name]
    ]
    out.setdefault("agreement", {"agree": [], "new": {}})
    return cast(Summary, out)


def default_title(docs: list[Document]) -> str:
    titles = [d.title or d.source for d in docs]
    return titles[0] if len(titles) == 1 else f"{len(titles)} reports: " + "; ".join(titles[:3])


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
    docs: list[Document],
    brief: list[SummaryCandidate],
    points: list[SummaryCandidate],
    *,
    threshold: float = 0.8,
) -> Summary:
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
