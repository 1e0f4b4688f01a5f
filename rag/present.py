"""The one rendering of answers, briefs and structured summaries, as terminal text and Markdown.

The CLI prints ``answer_text``; ``brief_markdown`` and ``summary_to_markdown`` are the
Markdown export of ``rag brief --format md`` and of the page's download; the page's
Brief tab lays out ``summary_sections``, passing its own escaper (report text is
untrusted there). Nothing here imports Streamlit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from rag.types import Answer, Brief, Summary


def _plain(text: str) -> str:
    return text


# --- answers ------------------------------------------------------------------------------------------


def answer_text(answer: Answer) -> str:
    """The answer with [n] markers, flagged sentences, and the cited spans below it."""
    lines: list[str] = []
    if answer.notice:
        lines.append(f"note: {answer.notice}")
    if answer.standalone_question and answer.standalone_question != answer.question:
        lines.append(f"(understood as: {answer.standalone_question})")
    if answer.sentences and not answer.abstained:
        for s in answer.sentences:
            marks = "".join(f"[{k}]" for k in s.citations)
            flag = "" if s.supported else f"  <- UNSUPPORTED: {'; '.join(s.problems)}"
            lines.append(f"{s.text} {marks}{flag}")
    else:
        lines.append(answer.answer)
    lines.append(
        f"\nmode: {answer.mode}"
        + (
            " (no LLM configured: answers are sentences taken from the reports)"
            if answer.mode == "extractive"
            else ""
        )
    )
    if answer.citations:
        lines.append("sources:")
        for c in answer.citations:
            lines.append(f"  [{c.key}] {c.source} [{c.start}:{c.end}) \u201c{c.quote}\u201d")
    elif answer.abstained and answer.passages:
        lines.append("closest passages:")
        for h in answer.passages[:3]:
            lines.append(f"  - {h.chunk.source} [{h.chunk.start}:{h.chunk.end}) {h.chunk.text[:160]}...")
    return "\n".join(lines)


# --- briefs -----------------------------------------------------------------------------------------


def brief_markdown(brief: Brief) -> str:
    """The brief with citation markers, its sources, and agreement for several reports."""
    body = " ".join(f"{s.text} " + "".join(f"[{k}]" for k in s.citations) for s in brief.sentences).strip()
    lines = [body, ""]
    if brief.notice:
        lines = [f"> {brief.notice}", ""] + lines
    agreement: Any = brief.agreement
    if agreement.get("agree") or any(agreement.get("new", {}).values()):
        lines += agreement_markdown(agreement)
    lines.append("**Sources**")
    lines += [
        f"[{c.key}] {c.source}{f' ({c.date})' if c.date else ''}: \u201c{c.quote}\u201d"
        for c in brief.citations
    ]
    return "\n".join(lines).strip() + "\n"


# --- structured summaries ------------------------------------------------------------------------


def summary_to_markdown(summary: Summary | dict[str, Any]) -> str:
    """A structured summary as Markdown: every item with numbered citations, then the sources quoted."""
    summary = cast(dict[str, Any], summary)
    refs: dict[tuple[str, int, int], int] = {}
    quotes: list[str] = []

    def marks(item: dict) -> str:
        out = []
        for c in item.get("citations") or []:
            key = (c["source"], c["start"], c["end"])
            if key not in refs:
                refs[key] = len(refs) + 1
                quotes.append(
                    f"[{refs[key]}] {c['source']} [{c['start']}:{c['end']}]: \u201c{c['quote']}\u201d"
                )
            out.append(f"[{refs[key]}]")
        return "".join(out)

    lines = [f"# {summary.get('title', 'Summary')}", ""]
    if summary.get("notice"):
        lines += [f"> {summary['notice']}", ""]
    bottom = summary.get("bottom_line") or {}
    lines += [f"**Bottom line:** {bottom.get('text', '')} {marks(bottom)}".rstrip(), ""]
    for name, heading, render in _SECTIONS:
        items = summary.get(name) or []
        if items:
            lines += [f"## {heading}", *[f"- {render(it)} {marks(it)}".rstrip() for it in items], ""]
    lines += _agreement_section(summary.get("agreement") or {})
    if summary.get("unfilled"):
        lines += ["## Not filled", *[f"- {u['field']}: {u['reason']}" for u in summary["unfilled"]], ""]
    lines += [
        "## Sources",
        *[
            f"- {s['source']}: {s['title']}" + (f" ({s['date']})" if s.get("date") else "")
            for s in summary.get("sources", [])
        ],
        "",
    ]
    if quotes:
        lines += ["## Citations", *[f"- {q}" for q in quotes], ""]
    lines.append(f"_Mode: {summary.get('mode', '?')}_")
    return "\n".join(lines) + "\n"


def _person_md(p: dict) -> str:
    extra = ", ".join(str(p[k]) for k in ("title", "affiliation") if p.get(k))
    return f"**{p['name']}**" + (f", {extra}" if extra else "")


def _figure_md(f: dict) -> str:
    return f"**{f['value']}**" + (f" {f['what']}" if f.get("what") else " (what it counts is not stated)")


_SECTIONS: list[tuple[str, str, Callable[[dict], str]]] = [
    ("key_points", "Key points", lambda it: it["text"]),
    ("people", "People", _person_md),
    ("organisations", "Organisations", lambda it: it["name"]),
    ("places", "Places", lambda it: it["name"]),
    ("timeline", "Timeline", lambda it: f"**{it['date_text']}** ({it['date']}): {it['event']}"),
    ("agreements", "Agreements and decisions", lambda it: it["text"]),
    ("figures", "Figures", _figure_md),
    ("open_questions", "Open questions", lambda it: it["question"]),
]


def _agreement_section(agreement: dict) -> list[str]:
    if not agreement.get("agree") and not any((agreement.get("new") or {}).values()):
        return []
    return ["## Across the reports", *agreement_markdown(agreement)]


def agreement_markdown(agreement: dict) -> list[str]:
    """Markdown lines: where the reports agree and what only one of them says."""
    lines = ["**Where the reports agree**"]
    lines += [f"- {a['text']} ({', '.join(a['sources'])})" for a in agreement.get("agree", [])] or [
        "- nothing"
    ]
    lines += ["", "**What only one report says**"]
    for source, points in agreement.get("new", {}).items():
        lines += [f"- {source}: {p['text']}" for p in points]
    return lines + [""]


# --- the page's summary sections ---------------------------------------------------------------


SUMMARY_SECTIONS = [
    ("key_points", "Key points"),
    ("people", "People"),
    ("organisations", "Organisations"),
    ("places", "Places"),
    ("timeline", "Timeline"),
    ("agreements", "Agreements and decisions"),
    ("figures", "Figures"),
    ("open_questions", "Open questions"),
]


ALWAYS_SHOWN = {"people", "organisations", "places", "timeline", "figures", "open_questions"}


def _summary_item(field_name: str, item: Any, escape: Callable[[str], str]) -> str:
    if field_name == "people":
        extra = ", ".join(x for x in (item.get("title"), item.get("affiliation")) if x)
        return f"**{escape(item.get('name', ''))}**" + (f" \u2014 {escape(extra)}" if extra else "")
    if field_name in {"organisations", "places"}:
        return escape(item.get("name", ""))
    if field_name == "timeline":
        when = item.get("date_text") or item.get("date") or ""
        return f"**{escape(when)}** \u2014 {escape(item.get('event', ''))}"
    if field_name == "figures":
        what = item.get("what")
        return f"**{escape(item.get('value', ''))}**" + (f" \u2014 {escape(what)}" if what else "")
    if field_name == "open_questions":
        return escape(item.get("question", ""))
    return escape(item.get("text", ""))


def summary_sections(
    summary: Summary | dict[str, Any],
    *,
    escape: Callable[[str], str] = _plain,
    badge: Callable[[str], str] = _plain,
    quotes: bool = False,
) -> list[tuple[str, str]]:
    """(heading, Markdown body) of each section of a structured summary, for the page.

    Every piece of report text goes through ``escape`` (the page passes its Markdown
    escaper, since report text is untrusted); a source name shown beside an item of a
    several-report summary goes through ``badge``. With ``quotes`` each item is followed
    by the exact passages it cites.
    """
    summary = cast(dict[str, Any], summary)
    out: list[tuple[str, str]] = []
    many = len(summary.get("sources") or []) > 1
    why = {r.get("field"): r.get("reason") for r in summary.get("unfilled") or []}
    for name, heading in SUMMARY_SECTIONS:
        items = summary.get(name) or []
        if not items:
            if name in ALWAYS_SHOWN:
                reason = why.get(name)
                out.append((heading, "*None found" + (f": {escape(reason)}*" if reason else ".*")))
            continue
        lines = []
        for item in items:
            cites = item.get("citations") or []
            line = "- " + _summary_item(name, item, escape)
            if many:
                line += "".join(" " + badge(escape(s)) for s in dict.fromkeys(c["source"] for c in cites))
            lines.append(line)
            if quotes:
                lines += [f"    - *\u201c{escape(c.get('quote', ''))}\u201d*" for c in cites]
        out.append((heading, "\n".join(lines)))
    agreement = summary.get("agreement") or {}
    if agreement.get("agree"):
        out.append(
            (
                "Where the reports agree",
                "\n".join(
                    f"- {escape(a.get('text', ''))} ({escape(', '.join(a.get('sources') or []))})"
                    for a in agreement["agree"]
                ),
            )
        )
    if any((agreement.get("new") or {}).values()):
        out.append(
            (
                "What each report adds",
                "\n".join(
                    f"- **{escape(source)}:** {escape(p.get('text', ''))}"
                    for source, points in agreement["new"].items()
                    for p in points
                ),
            )
        )
    return out
