"""Domain errors with messages fit for the people who read them.

Every error the CLI or the page shows is a ``RagError``; anything else is a bug.
Messages say what went wrong and what the user can do about it.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: a problem a user can understand and act on."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(RagError):
    """A setting is missing, malformed or contradicts another."""


class ModelFilesError(RagError):
    """Local model or tokenizer files are missing or fail their checksum."""


class EncodingUnavailableError(RagError):
    """A tiktoken encoding could not be loaded (no cache file, no network)."""


class IngestError(RagError):
    """One input file could not be ingested; carries the file's name."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class StoreError(RagError):
    """The vector store is unreachable, corrupt or incompatible."""


class EmbedderMismatchError(StoreError):
    """The store was built with another embedder than the one configured."""


class ProviderError(RagError):
    """An LLM or embeddings provider failed (network, auth, quota, bad reply)."""


class CitationError(RagError):
    """A model's answer cited something that is not in the retrieved passages."""


class PromptError(RagError):
    """A prompt file is missing or does not declare the variables the code passes."""


class SchemaError(RagError):
    """A structured output does not match its JSON schema."""
