"""Validation of a finished structured summary: its schema, every citation span, and the timeline order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rag.errors import SchemaError
from rag.nlp.dates import sort_key
from rag.schema import validate_schema
from rag.summarize.schema import load_summary_schema
from rag.types import Document


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
