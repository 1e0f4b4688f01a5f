"""Prompt files: loading, variable checks, rendering, fingerprint, shared sentinels.

A prompt is ``prompts/<name>.md`` (top level of the project): the system message, a
line ``---user---``, then the user message. Variables are written ``{{name}}``. An
optional ``prompts/<name>.schema.json`` is the JSON schema of the structured reply.
A wheel installs the folder under ``<prefix>/share/dossier/prompts`` (see
``rag.config.project_folder``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.config import project_folder
from rag.errors import PromptError

ABSTAIN = "The reports do not say"  # the sentinel an answer starts with when the passages lack the answer
CITATION_KEY_FORMAT = "S{n}"  # passage keys shown to the model: S1, S2, ...
USER_SEPARATOR = "---user---"

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_KEY = re.compile("^" + re.escape(CITATION_KEY_FORMAT).replace(r"\{n\}", r"([1-9][0-9]*)") + "$")


def citation_key(n: int) -> str:
    """The key of the ``n``-th passage (1-based), e.g. "S3"."""
    return CITATION_KEY_FORMAT.format(n=n)


def parse_citation_key(key: str) -> int | None:
    """The passage number in a key like "S3" (None when it is not a key)."""
    match = _KEY.match(key.strip())
    return int(match.group(1)) if match else None


def format_passage(n: int, text: str, *, source: str = "", date: str | None = None) -> str:
    """One numbered passage as the answer prompt expects it, delimited so its text cannot close the tag."""
    attrs = f'key="{citation_key(n)}"'
    if source:
        attrs += f' source="{_attr(source)}"'
    if date:
        attrs += f' date="{_attr(date)}"'
    body = re.sub(r"</?\s*passage", lambda m: m.group(0) + "_", text, flags=re.IGNORECASE)
    return f"<passage {attrs}>\n{body}\n</passage>"


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace("\n", " ")


def prompts_dir() -> Path:
    """The folder holding the prompt files (the project's top-level ``prompts/``)."""
    return project_folder("prompts")


@dataclass(frozen=True)
class Prompt:
    """A loaded prompt: system and user templates, their variables and the optional reply schema."""

    name: str
    system: str
    user: str
    schema: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def variables(self) -> frozenset[str]:
        """Names of the ``{{variables}}`` used by either part."""
        return frozenset(_VAR.findall(self.system)) | frozenset(_VAR.findall(self.user))

    def render(self, **values: Any) -> list[dict[str, str]]:
        """The chat messages with every variable filled in; PromptError names a missing or unknown one."""
        missing = sorted(self.variables - values.keys())
        unexpected = sorted(values.keys() - self.variables)
        if missing:
            raise PromptError(
                f"Prompt {self.name!r} needs the variable {missing[0]!r} (missing: {', '.join(missing)})."
            )
        if unexpected:
            raise PromptError(
                f"Prompt {self.name!r} has no variable {unexpected[0]!r}"
                f" (it uses: {', '.join(sorted(self.variables)) or 'none'})."
            )
        text = {k: str(v) for k, v in values.items()}
        # One pass: braces inside a value (e.g. a report quoting "{{x}}") are never expanded.

        def fill(template: str) -> str:
            return _VAR.sub(lambda m: text[m.group(1)], template)

        messages = [{"role": "system", "content": fill(self.system)}]
        if self.user:
            messages.append({"role": "user", "content": fill(self.user)})
        return messages


def parse_prompt(name: str, source: str) -> Prompt:
    """Split prompt-file text into its system and user parts."""
    lines = source.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == USER_SEPARATOR]
    if len(marks) > 1:
        raise PromptError(f"Prompt {name!r} has {len(marks)} '{USER_SEPARATOR}' lines; it needs at most one.")
    if not marks:
        return Prompt(name, source.strip(), "")
    cut = marks[0]
    return Prompt(name, "\n".join(lines[:cut]).strip(), "\n".join(lines[cut + 1 :]).strip())


def load_prompt(name: str, folder: Path | None = None) -> Prompt:
    """Load ``<name>.md`` (and ``<name>.schema.json`` when present) from the prompts folder."""
    base = folder if folder is not None else prompts_dir()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise PromptError(f"{name!r} is not a prompt name.")
    file = base.joinpath(f"{name}.md")
    if not file.is_file():
        known = ", ".join(list_prompts(base)) or "none"
        raise PromptError(f"There is no prompt {name!r} in {base} (prompts: {known}).")
    prompt = parse_prompt(name, file.read_text(encoding="utf-8"))
    schema_file = base.joinpath(f"{name}.schema.json")
    if schema_file.is_file():
        try:
            schema = json.loads(schema_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise PromptError(f"The schema file {name}.schema.json is not valid JSON: {exc}") from None
        prompt = Prompt(prompt.name, prompt.system, prompt.user, schema)
    return prompt


def list_prompts(folder: Path | None = None) -> list[str]:
    """Names of the available prompts."""
    base = folder if folder is not None else prompts_dir()
    return sorted(f.name[:-3] for f in base.iterdir() if f.name.endswith(".md") and f.is_file())


def _prompt_files(base: Path) -> Iterable[Path]:
    return sorted(
        (f for f in base.iterdir() if f.is_file() and f.name.endswith((".md", ".json"))), key=lambda f: f.name
    )


def prompt_fingerprint(folder: Path | None = None) -> str:
    """Short hash of every prompt and schema file, stored with answers and eval runs."""
    base = folder if folder is not None else prompts_dir()
    digest = hashlib.sha256()
    for f in _prompt_files(base):
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
