"""The structured-summary schema (``rag/prompts/summary.schema.json``): loading, validation, LLM reply form.

The schema file documents the summary Dossier returns: every fact-stating field
carries citations ``{source, start, end, quote}`` with ``quote ==
document.text[start:end]``. A model cannot count characters, so the LLM is asked
for a *reply* form derived from the same file, where a citation is ``{key,
quote}`` (``key`` names a numbered passage, e.g. "S3") and the code locates the
quote to fill in the span. The Markdown rendering of a summary lives here too.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rag.nlp.claims import check_sentence
from rag.errors import SchemaError
from rag.adapters.openai_chat import complete_json
from rag.prompts import citation_key, load_prompt, parse_citation_key, prompts_dir
from rag.schema import validate_schema
from rag.nlp.text import find_quote, fold, word_count
from rag.types import Document

SCHEMA_FILE = "summary.schema.json"
# Fields the code fills itself; the model never writes them.
CODE_FIELDS = ("agreement", "sources", "mode", "notice", "unfilled")
# Fields that list cited items, in the order they are shown.
ITEM_FIELDS = (
    "key_points",
    "people",
    "organisations",
    "places",
    "timeline",
    "agreements",
    "figures",
    "open_questions",
)


def load_summary_schema() -> dict[str, Any]:
    """The summary JSON schema from the prompts folder."""
    file = prompts_dir().joinpath(SCHEMA_FILE)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"Cannot read the summary schema {SCHEMA_FILE}: {exc}") from None


def reply_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema the LLM answers in: no code-filled fields, citations as ``{key, quote}``."""
    out = copy.deepcopy(schema)
    for name in ("$schema", "$id"):
        out.pop(name, None)
    for name in CODE_FIELDS:
        out["properties"].pop(name, None)
    out["required"] = [r for r in out["required"] if r not in CODE_FIELDS]
    _swap_citations(out)
    _drop_keywords(out, ("minItems", "minLength"))  # not every strict-mode server takes them; checked in code
    return out


def _drop_keywords(node: Any, names: tuple[str, ...]) -> None:
    if isinstance(node, dict):
        for name in names:
            node.pop(name, None)
        for value in node.values():
            _drop_keywords(value, names)
    elif isinstance(node, list):
        for value in node:
            _drop_keywords(value, names)


def _swap_citations(node: Any) -> None:
    """Replace every citation-array item schema with the ``{key, quote}`` reply form, in place."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and isinstance(props.get("citations"), dict):
            cit = props["citations"]
            cit["items"] = {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "description": "Passage key, e.g. S1."},
                    "quote": {"type": "string", "description": "Exact words copied from that passage."},
                },
                "required": ["key", "quote"],
                "additionalProperties": False,
            }
        for value in node.values():
            _swap_citations(value)
    elif isinstance(node, list):
        for value in node:
            _swap_citations(value)


def _citations(data: Any, path: str = "") -> list[tuple[str, dict]]:
    """Every citation object in a summary, with its path."""
    out: list[tuple[str, dict]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            sub = f"{path}.{key}" if path else key
            if key == "citations" and isinstance(value, list):
                out += [(f"{sub}[{i}]", c) for i, c in enumerate(value) if isinstance(c, dict)]
            else:
                out += _citations(value, sub)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _citations(value, f"{path}[{i}]")
    return out


def citation_problems(summary: Mapping[str, Any], docs: Mapping[str, Document]) -> list[str]:
    """Citations whose source is unknown or whose quote is not exactly ``text[start:end]``."""
    problems: list[str] = []
    for path, cit in _citations(summary):
        doc = docs.get(cit.get("source", ""))
        if doc is None:
            problems.append(f"{path}: unknown source {cit.get('source')!r}")
            continue
        start, end = cit.get("start"), cit.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(doc.text)):
            problems.append(f"{path}: span [{start}, {end}) is outside {doc.source}")
        elif doc.text[start:end] != cit.get("quote"):
            problems.append(f"{path}: quote is not the text at [{start}, {end}) of {doc.source}")
    return problems


def timeline_problems(summary: Mapping[str, Any]) -> list[str]:
    """The timeline must be sorted by date (dates without a year last)."""
    keys = [sort_key(e.get("date", "")) for e in summary.get("timeline", []) if isinstance(e, dict)]
    return [] if keys == sorted(keys) else ["timeline: events are not sorted by date"]


def sort_key(date: str) -> str:
    """Sort key of an ISO, month or --MM-DD date (a date without a year sorts after dated ones)."""
    return "9999" + date[1:] if date.startswith("--") else date


def summary_problems(
    summary: Mapping[str, Any], docs: Mapping[str, Document], schema: dict[str, Any] | None = None
) -> list[str]:
    """Everything wrong with a finished summary: schema, citation spans and timeline order."""
    schema = schema or load_summary_schema()
    problems = validate_schema(dict(summary), schema)
    return problems + citation_problems(summary, docs) + timeline_problems(summary)


def validate_summary(
    summary: Mapping[str, Any], docs: Mapping[str, Document], schema: dict[str, Any] | None = None
) -> None:
    """Raise SchemaError when the summary breaks its schema or cites text that is not there."""
    problems = summary_problems(summary, docs, schema)
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise SchemaError(f"The structured summary is not valid: {shown}.")


# --- citations in replies ---------------------------------------------------------------


@dataclass(frozen=True)
class Passage:
    """A numbered passage shown to the model: ``text == document.text[start:end]``."""

    doc: int  # index into the documents being summarised
    source: str
    start: int
    end: int
    text: str
    date: str | None = None


def citation_dict(doc: Document, start: int, end: int) -> dict[str, Any]:
    """A summary citation: source, span and the exact quote."""
    return {"source": doc.source, "start": start, "end": end, "quote": doc.text[start:end]}


class FirstReplyCheck:
    """``validate`` hook for ``complete_json``: hard problems always, unsupported claims on the first reply.

    An unsupported claim earns one re-ask; if the second reply still has one, the
    caller drops that sentence or item and says so.
    """

    def __init__(self, problems: Callable[[dict], tuple[list[str], list[str]]]) -> None:
        self.problems = problems
        self.calls = 0

    def __call__(self, data: dict) -> list[str]:
        self.calls += 1
        hard, soft = self.problems(data)
        return hard + (soft if self.calls == 1 else [])


def cited_passages(cites: list[dict], passages: list[Passage], where: str) -> tuple[list[Passage], list[str]]:
    """The passages ``cites`` point to, and problems with keys or quotes (for the re-ask message)."""
    found: list[Passage] = []
    problems: list[str] = []
    for cite in cites:
        n = parse_citation_key(str(cite.get("key", "")))
        if n is None or not 1 <= n <= len(passages):
            problems.append(
                f'{where} cites "{cite.get("key")}", which is not one of the passages '
                f"({citation_key(1)} to {citation_key(len(passages))})"
            )
        elif find_quote(passages[n - 1].text, str(cite.get("quote") or "")) is None:
            problems.append(
                f'{where}: the quote "{_short(cite.get("quote"))}" does not occur in '
                f"{citation_key(n)}; copy the quote exactly"
            )
        else:
            found.append(passages[n - 1])
    return found, problems


def locate(cite: dict, passages: list[Passage], docs: list[Document]) -> dict[str, Any]:
    """The summary citation for a validated ``{key, quote}`` reply citation."""
    passage = passages[parse_citation_key(cite["key"]) - 1]  # type: ignore[operator]  # validated
    a, b = find_quote(passage.text, cite["quote"])  # type: ignore[misc]  # validated
    return citation_dict(docs[passage.doc], passage.start + a, passage.start + b)


def brief_reply_problems(
    data: dict, passages: list[Passage], limit: int | None
) -> tuple[list[str], list[str]]:
    """(hard, soft) problems of a brief or notes reply: citations, then claims and the word limit."""
    hard: list[str] = []
    soft: list[str] = []
    sentences = data.get("sentences") or []
    if not sentences:
        hard.append('"sentences" is empty: write at least one sentence')
    for i, sent in enumerate(sentences, 1):
        text = str(sent.get("text") or "").strip()
        if not text:
            hard.append(f"sentence {i} is empty")
            continue
        if not sent.get("citations"):
            hard.append(f"sentence {i} cites no passage; cite at least one with an exact quote")
            continue
        found, problems = cited_passages(sent["citations"], passages, f"sentence {i}")
        hard += problems
        verdict = check_sentence(text, [p.text for p in found]) if found else None
        if verdict is not None and not verdict.supported:
            soft.append(
                f"sentence {i} is not supported by the passages it cites: {'; '.join(verdict.problems)}"
            )
    total = sum(word_count(str(s.get("text") or "")) for s in sentences)
    if limit is not None and total > limit:
        soft.append(f"the brief has {total} words but the limit is {limit}; shorten it")
    return hard, soft


# --- LLM summary replies --------------------------------------------------------------------

_DATE_VALUE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d{4}-\d{2}|--\d{2}-\d{2})$")
# What each field states, as a sentence the claim checker can test against the cited passages.
_CLAIMS: dict[str, Callable[[dict], str]] = {
    "key_points": lambda it: str(it.get("text") or ""),
    "agreements": lambda it: str(it.get("text") or ""),
    "people": lambda it: ", ".join(str(it.get(k)) for k in ("name", "title", "affiliation") if it.get(k)),
    "organisations": lambda it: str(it.get("name") or ""),
    "places": lambda it: str(it.get("name") or ""),
    "timeline": lambda it: f"{it.get('date_text') or ''}: {it.get('event') or ''}",
    "figures": lambda it: " ".join(str(it.get(k)) for k in ("value", "what") if it.get(k)),
}


def _reply_items(data: dict) -> list[tuple[str, str, dict]]:
    """(field, path, item) for the bottom line and every listed item of a summary reply."""
    out = [("bottom_line", "bottom_line", data.get("bottom_line") or {})]
    for name in ITEM_FIELDS:
        out += [
            (name, f"{name}[{i}]", it) for i, it in enumerate(data.get(name) or []) if isinstance(it, dict)
        ]
    return out


def summary_reply_problems(data: dict, passages: list[Passage]) -> tuple[list[str], list[str]]:
    """(hard, soft) problems of a summary reply: bad citations, then claims the passages do not support."""
    hard: list[str] = []
    soft: list[str] = []
    for name, path, item in _reply_items(data):
        cites = item.get("citations") or []
        if not cites and name != "open_questions":
            hard.append(f"{path} cites no passage; cite at least one with an exact quote")
            continue
        found, problems = cited_passages(cites, passages, path)
        hard += problems
        if name == "timeline" and not _DATE_VALUE.match(str(item.get("date") or "")):
            hard.append(f"{path}.date must be YYYY-MM-DD, YYYY-MM or --MM-DD, not {item.get('date')!r}")
        claim = (
            _CLAIMS.get(name, lambda it: str(it.get("text") or ""))(item) if name != "open_questions" else ""
        )
        verdict = check_sentence(claim, [p.text for p in found]) if claim and found else None
        if verdict is not None and not verdict.supported:
            soft.append(f"{path} is not supported by the passages it cites: {'; '.join(verdict.problems)}")
    return hard, soft


def llm_summary(chat: Any, docs: list[Document], passages: list[Passage], reports: str, blocks: str) -> dict:
    """Ask the model for the summary, validate it (one re-ask), and turn it into the documented form."""
    schema = reply_schema(load_summary_schema())
    messages = load_prompt("summary").render(reports=reports, passages=blocks)
    check = FirstReplyCheck(lambda data: summary_reply_problems(data, passages))
    data, _result = complete_json(chat, messages, schema, schema_name="summary", validate=check)
    return reply_to_summary(data, passages, docs)


def reply_to_summary(data: dict, passages: list[Passage], docs: list[Document]) -> dict[str, Any]:
    """The documented summary from a validated reply: spans located, unsupported items dropped."""
    out: dict[str, Any] = {"title": str(data.get("title") or "").strip() or _default_title(docs)}
    dropped: list[str] = []
    for name, path, item in _reply_items(data):
        found, _ = cited_passages(item.get("citations") or [], passages, path)
        claim = _CLAIMS.get(name, lambda it: "")(item)
        verdict = check_sentence(claim, [p.text for p in found]) if claim else None
        if verdict is not None and any(p.startswith(("number", "date", "name")) for p in verdict.problems):
            if name == "bottom_line":
                raise SchemaError(f"The model's bottom line is not supported: {'; '.join(verdict.problems)}")
            dropped.append(f"{path} ({verdict.problems[0]})")
            continue
        clean = {k: v for k, v in item.items() if k != "citations"}
        clean["citations"] = [locate(c, passages, docs) for c in item.get("citations") or []]
        if name == "bottom_line":
            out[name] = clean
        elif not _repeat(clean, out.setdefault(name, []), name):  # the same fact listed twice counts once
            out[name].append(clean)
    for name in ITEM_FIELDS:
        out.setdefault(name, [])
    out["timeline"].sort(key=lambda e: sort_key(e["date"]))
    notice = (
        f"Left out {len(dropped)} item(s) the cited passages do not support: {'; '.join(dropped)}."
        if dropped
        else None
    )
    return finish_summary(out, docs, "llm", notice, {})


def _repeat(item: dict, items: list[dict], name: str) -> bool:
    """True when ``item`` states what one of ``items`` already states (folded text compared)."""
    claim = _CLAIMS.get(name, lambda it: str(it.get("question") or it.get("text") or ""))
    key = fold(claim(item)).strip(" .\"'")
    return any(fold(claim(other)).strip(" .\"'") == key for other in items)


def finish_summary(
    out: dict[str, Any], docs: list[Document], mode: str, notice: str | None, reasons: dict[str, str]
) -> dict[str, Any]:
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
    return out


def _default_title(docs: list[Document]) -> str:
    titles = [d.title or d.source for d in docs]
    return titles[0] if len(titles) == 1 else f"{len(titles)} reports: " + "; ".join(titles[:3])


def _short(text: object, n: int = 60) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= n else s[: n - 1] + "\u2026"


# --- markdown -------------------------------------------------------------------------------


def summary_to_markdown(summary: dict) -> str:
    """A structured summary as Markdown: every item with numbered citations, then the sources quoted."""
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
