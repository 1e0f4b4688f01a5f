"""Validated structured replies: the one mechanism behind every JSON answer a model gives.

A reply is parsed (code fences and prose around the JSON tolerated), checked
against its JSON schema (``rag.schema``), then by a caller's check (citations:
every key names a numbered passage and every quote occurs in it, see
``citation_problems``; claims the passages do not support). A reply with
problems is re-asked once, with the problems listed; a second failure is a
``SchemaError``. Answers, briefs, map notes and structured summaries all go
through ``complete_json``; a streamed first reply joins at ``reask_once``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from rag.errors import SchemaError
from rag.nlp.text import find_quote
from rag.ports import ChatModel
from rag.prompts import citation_key, parse_citation_key
from rag.schema import validate_schema
from rag.types import ChatResult

log = logging.getLogger(__name__)

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```$", re.DOTALL)
Problems = Callable[[dict], tuple[list[str], list[str]]]  # reply -> (hard problems, soft problems)


def parse_json_reply(text: str) -> tuple[Any, str | None]:
    """(data, None) for a JSON reply (code fences and prose around it tolerated), else (None, problem)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        return json.loads(body), None
    except ValueError as exc:
        first, last = body.find("{"), body.rfind("}")
        if 0 <= first < last and (first, last) != (0, len(body) - 1):
            try:
                return json.loads(body[first : last + 1]), None
            except ValueError:
                pass
        return None, f"the reply is not valid JSON ({exc})"


def check_json_reply(
    result: ChatResult, schema: dict, validate: Callable[[dict], list[str]] | None = None
) -> tuple[Any, list[str]]:
    """Parse and check one reply: (data, problems); problems is empty when it is usable."""
    data, problem = parse_json_reply(result.text)
    if problem:
        if result.finish_reason == "length":
            problem = (
                "the reply was cut off before the JSON was complete (output limit reached); answer shorter"
            )
        return None, [problem]
    problems = validate_schema(data, schema)
    if not problems and validate is not None:
        problems = list(validate(data))
    return data, problems


def reask_message(problems: list[str]) -> dict[str, str]:
    """The user message that asks the model to fix its previous reply."""
    listed = "\n".join(f"- {p}" for p in problems[:10])
    return {
        "role": "user",
        "content": "Your previous reply could not be used:\n"
        + listed
        + "\nReply again with the corrected JSON object only, following all the rules.",
    }


def complete_json(
    model: ChatModel,
    messages: list[dict],
    schema: dict,
    *,
    schema_name: str,
    validate: Callable[[dict], list[str]] | None = None,
) -> tuple[dict, ChatResult]:
    """A reply parsed and validated against ``schema`` (and ``validate``), re-asked once, else SchemaError.

    The returned ChatResult is the last call's, with the usage of both calls summed.
    """
    first = model.complete(messages, json_schema=schema, schema_name=schema_name)
    data, problems = check_json_reply(first, schema, validate)
    if not problems:
        return data, first
    return reask_once(model, messages, schema, first, problems, schema_name=schema_name, validate=validate)


def reask_once(
    model: ChatModel,
    messages: list[dict],
    schema: dict,
    first: ChatResult,
    problems: list[str],
    *,
    schema_name: str,
    validate: Callable[[dict], list[str]] | None = None,
) -> tuple[dict, ChatResult]:
    """Ask again once, listing the ``problems`` of the ``first`` reply; SchemaError when it fails again.

    ``complete_json`` calls it; so does a caller that obtained the first reply itself (streamed).
    """
    log.info("%s reply did not fit the %r schema (%s); re-asking once", model.name, schema_name, problems[:3])
    retry = [*messages, {"role": "assistant", "content": first.text}, reask_message(problems)]
    second = model.complete(retry, json_schema=schema, schema_name=schema_name)
    data, problems = check_json_reply(second, schema, validate)
    usage = {k: first.usage.get(k, 0) + second.usage.get(k, 0) for k in {*first.usage, *second.usage}}
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise SchemaError(
            f"The model's reply did not fit the {schema_name!r} format, even after one re-ask: {shown}.",
            hint="Try again, or use a model that supports structured output.",
        )
    return data, ChatResult(second.text, usage, second.model, second.finish_reason)


class FirstReplyCheck:
    """The ``validate`` hook: hard problems always count, soft ones (unsupported claims) on the first reply.

    An unsupported claim earns one re-ask; if the re-asked reply still has one, the
    caller shows the answer with that sentence flagged, or drops that sentence or item.
    """

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.calls = 0

    def __call__(self, data: dict) -> list[str]:
        self.calls += 1
        hard, soft = self.problems(data)
        return hard + (soft if self.calls == 1 else [])


def key_range(n: int) -> str:
    """The passage keys a reply may cite, e.g. "S1 to S6" (or "S1")."""
    return f"{citation_key(1)} to {citation_key(n)}" if n > 1 else citation_key(1)


def citation_problems(cites: list[dict], passages: Sequence[str], where: str) -> tuple[list[int], list[str]]:
    """(0-based indices of the passages ``cites`` point to, problems with keys or quotes).

    A citation is ``{key, quote}``: the key must name one of the numbered ``passages``
    and the quote must occur in it (``rag.nlp.text.find_quote``), so it maps to an exact span.
    """
    found: list[int] = []
    problems: list[str] = []
    for cite in cites:
        n = parse_citation_key(str(cite.get("key", "")))
        if n is None or not 1 <= n <= len(passages):
            problems.append(
                f'{where} cites "{cite.get("key")}", which is not one of the passages '
                f"({key_range(len(passages))})"
            )
        elif find_quote(passages[n - 1], str(cite.get("quote") or "")) is None:
            problems.append(
                f'{where}: the quote "{short(cite.get("quote"))}" does not occur in '
                f"{citation_key(n)}; copy the quote exactly"
            )
        else:
            found.append(n - 1)
    return found, problems


def locate(cite: dict, passages: Sequence[str]) -> tuple[int, int, int]:
    """(0-based passage index, start, end in that passage) of a validated ``{key, quote}`` citation."""
    n = parse_citation_key(str(cite["key"]))
    if n is None:
        raise ValueError(f"not a passage key: {cite['key']!r}")
    span = find_quote(passages[n - 1], str(cite["quote"]))
    if span is None:
        raise ValueError(f"quote not in passage {cite['key']}")
    return n - 1, span[0], span[1]


def short(text: object, n: int = 60) -> str:
    """``text`` on one line, cut to ``n`` characters with an ellipsis."""
    s = " ".join(str(text or "").split())
    return s if len(s) <= n else s[: n - 1] + "\u2026"
