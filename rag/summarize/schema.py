"""The structured-summary schema (``prompts/summary.schema.json``) and the reply form the LLM answers in.

The schema file documents the summary Dossier returns (``rag.types.Summary``):
every fact-stating field carries citations ``{source, start, end, quote}`` with
``quote == document.text[start:end]``. A model cannot count characters, so the LLM
is asked for a *reply* form derived from the same file, where a citation is ``{key,
quote}`` (``key`` names a numbered passage, e.g. "S3") and the code locates the
quote to fill in the span (``rag.summarize.llm_reply``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from rag.errors import SchemaError
from rag.prompts import prompts_dir

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
