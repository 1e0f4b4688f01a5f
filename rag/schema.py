"""A small JSON-schema checker for the structured outputs Dossier asks models for.

It covers the subset our schemas use (type, properties, required,
additionalProperties, items, enum, const, min/max items, minLength) and reports
problems as short sentences with a path, e.g. ``sentences[0].citations: expected
array, got string``, which are fed back to the model when it is re-asked. We do not
use ``jsonschema`` because it is only a transitive dependency of chromadb.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_name(value: Any) -> str:
    for name, kinds in _TYPES.items():
        if isinstance(value, kinds) and not (isinstance(value, bool) and name in {"integer", "number"}):
            return name
    return type(value).__name__


def _type_ok(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else list(expected)
    for name in names:
        if isinstance(value, bool) and name in {"integer", "number"}:
            continue  # in Python bool is an int; in JSON it is not
        if name == "integer" and isinstance(value, float) and value.is_integer():
            return True  # JSON schema counts 1.0 as an integer
        if isinstance(value, _TYPES.get(name, ())):
            return True
    return False


def _where(path: str) -> str:
    return path or "the reply"


def validate_schema(data: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Problems of ``data`` against ``schema`` (empty when it conforms)."""
    if "type" in schema and not _type_ok(data, schema["type"]):
        expected = schema["type"] if isinstance(schema["type"], str) else " or ".join(schema["type"])
        return [f"{_where(path)}: expected {expected}, got {_type_name(data)}"]
    problems: list[str] = []
    if "enum" in schema and data not in schema["enum"]:
        problems.append(f"{_where(path)}: {data!r} is not one of {schema['enum']!r}")
    if "const" in schema and data != schema["const"]:
        problems.append(f"{_where(path)}: must be {schema['const']!r}")
    if isinstance(data, str) and len(data) < schema.get("minLength", 0):
        problems.append(
            f"{_where(path)}: must not be empty"
            if schema["minLength"] == 1
            else f"{_where(path)}: shorter than {schema['minLength']} characters"
        )
    if isinstance(data, dict):
        problems += _check_object(data, schema, path)
    if isinstance(data, list):
        problems += _check_array(data, schema, path)
    return problems


def _check_object(data: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    props: dict[str, Any] = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in data:
            problems.append(f"{_where(path)}: missing required key {key!r}")
    extra = schema.get("additionalProperties", True)
    for key, value in data.items():
        sub = f"{path}.{key}" if path else key
        if key in props:
            problems += validate_schema(value, props[key], sub)
        elif extra is False:
            problems.append(f"{_where(path)}: unexpected key {key!r}")
        elif isinstance(extra, dict):
            problems += validate_schema(value, extra, sub)
    return problems


def _check_array(data: list[Any], schema: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    if len(data) < schema.get("minItems", 0):
        problems.append(f"{_where(path)}: needs at least {schema['minItems']} item(s), got {len(data)}")
    if "maxItems" in schema and len(data) > schema["maxItems"]:
        problems.append(f"{_where(path)}: at most {schema['maxItems']} item(s) allowed, got {len(data)}")
    items = schema.get("items")
    if isinstance(items, dict):
        for i, value in enumerate(data):
            problems += validate_schema(value, items, f"{path}[{i}]")
    return problems


def strict_problems(schema: dict[str, Any], path: str = "") -> list[str]:
    """Why ``schema`` would be rejected by OpenAI's strict structured outputs (empty when fine)."""
    problems: list[str] = []
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    if "object" in kinds:
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            problems.append(f"{_where(path)}: objects need additionalProperties: false")
        missing = sorted(set(props) - set(schema.get("required", [])))
        if missing:
            problems.append(f"{_where(path)}: every property must be required (not: {', '.join(missing)})")
        for key, sub in props.items():
            problems += strict_problems(sub, f"{path}.{key}" if path else key)
    if "array" in kinds and isinstance(schema.get("items"), dict):
        problems += strict_problems(schema["items"], f"{path}[]")
    return problems
