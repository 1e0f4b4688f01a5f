"""The small JSON-schema checker and the JSON reply parser of rag.adapters.openai_chat."""

from __future__ import annotations

import pytest

from rag.prompts import load_prompt
from rag.replies import parse_json_reply
from rag.schema import strict_problems, validate_schema

ANSWER_SCHEMA = load_prompt("answer").schema or {}
GOOD = {
    "sentences": [{"text": "They met in Moscow.", "citations": [{"key": "S1", "quote": "met in Moscow"}]}],
    "abstained": False,
}


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('Here you go: {"a": {"b": 2}} Hope this helps.', {"a": {"b": 2}}),
    ],
)
def test_parse_json_reply(text, expected):
    assert parse_json_reply(text) == (expected, None)


@pytest.mark.parametrize("text", ['{"a": ', "", "nothing here", '{"a": 1} {"b": 2}'])
def test_parse_json_reply_problems(text):
    data, problem = parse_json_reply(text)
    assert data is None and problem and problem.startswith("the reply is not valid JSON")


def test_answer_schema_is_strict_compatible():
    assert strict_problems(ANSWER_SCHEMA) == []
    assert validate_schema(GOOD, ANSWER_SCHEMA) == []
    assert validate_schema({"sentences": [], "abstained": True}, ANSWER_SCHEMA) == []
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert strict_problems(loose) == [
        "the reply: objects need additionalProperties: false",
        "the reply: every property must be required (not: a)",
    ]


SCHEMA = {
    "type": "object",
    "properties": {
        "n": {"type": "integer"},
        "x": {"type": "number"},
        "kind": {"enum": ["a", "b"]},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 2},
        "opt": {"type": ["string", "null"]},
        "inner": {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": False,
        },
    },
    "required": ["n", "kind", "tags"],
}
CASES = [
    ({"n": 1, "kind": "a", "tags": ["t"]}, []),
    ({"n": 1.0, "x": 2, "kind": "b", "tags": ["t"], "opt": None, "inner": {"ok": True}}, []),
    ({"n": True, "kind": "a", "tags": ["t"]}, ["n: expected integer, got boolean"]),
    (
        {"n": 1.5, "kind": "c", "tags": []},
        [
            "n: expected integer, got number",
            "kind: 'c' is not one of ['a', 'b']",
            "tags: needs at least 1 item(s), got 0",
        ],
    ),
    (
        {"kind": "a", "tags": ["", "y", "z"]},
        [
            "the reply: missing required key 'n'",
            "tags: at most 2 item(s) allowed, got 3",
            "tags[0]: must not be empty",
        ],
    ),
    (
        {"n": 1, "kind": "a", "tags": ["t"], "inner": {"ok": 1, "more": 2}},
        ["inner.ok: expected boolean, got integer", "inner: unexpected key 'more'"],
    ),
    ([1], ["the reply: expected object, got array"]),
]


@pytest.mark.parametrize("data, problems", CASES)
def test_validate_schema(data, problems):
    assert validate_schema(data, SCHEMA) == problems


@pytest.mark.parametrize("data, problems", CASES)
def test_validate_schema_agrees_with_jsonschema(data, problems):
    jsonschema = pytest.importorskip("jsonschema")
    assert (not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))) == (not problems)
