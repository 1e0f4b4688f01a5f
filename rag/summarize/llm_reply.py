"""LLM replies for briefs, map notes and structured summaries: what to check, and how a reply becomes a result.

The checking itself is the one mechanism of ``rag.replies`` (schema, citations, one
re-ask); this module says what counts as a problem in a brief or a summary reply and
turns a validated summary reply into the documented ``Summary``: each ``{key, quote}``
citation located to its exact span, unsupported items dropped with a notice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rag.errors import SchemaError
from rag.nlp.claims import check_sentence
from rag.nlp.dates import sort_key
from rag.nlp.text import fold, word_count
from rag.ports import ChatModel
from rag.prompts import load_prompt
from rag.replies import FirstReplyCheck, citation_problems, complete_json
from rag.replies import locate as locate_in
from rag.summarize.schema import ITEM_FIELDS, load_summary_schema, reply_schema
from rag.summarize.summary import citation_dict, default_title, finish_summary
from rag.types import Document, Summary, SummaryCitation

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


def cited_passages(cites: list[dict], passages: list[Passage], where: str) -> tuple[list[Passage], list[str]]:
    """The passages ``cites`` point to, and problems with keys or quotes (for the re-ask message)."""
    found, problems = citation_problems(cites, [p.text for p in passages], where)
    return [passages[i] for i in found], problems


def locate(cite: dict, passages: list[Passage], docs: list[Document]) -> SummaryCitation:
    """The summary citation for a validated ``{key, quote}`` reply citation."""
    i, a, b = locate_in(cite, [p.text for p in passages])
    passage = passages[i]
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


def llm_summary(
    chat: ChatModel, docs: list[Document], passages: list[Passage], reports: str, blocks: str
) -> Summary:
    """Ask the model for the summary, validate it (one re-ask), and turn it into the documented form."""
    schema = reply_schema(load_summary_schema())
    messages = load_prompt("summary").render(reports=reports, passages=blocks)
    check = FirstReplyCheck(lambda data: summary_reply_problems(data, passages))
    data, _result = complete_json(chat, messages, schema, schema_name="summary", validate=check)
    return reply_to_summary(data, passages, docs)


def reply_to_summary(data: dict, passages: list[Passage], docs: list[Document]) -> Summary:
    """The documented summary from a validated reply: spans located, unsupported items dropped."""
    out: dict[str, Any] = {"title": str(data.get("title") or "").strip() or default_title(docs)}
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


# --- markdown -------------------------------------------------------------------------------
