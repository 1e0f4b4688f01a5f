"""One mapping from any failure of an OpenAI-compatible request to a ``ProviderError`` for people.

Both the chat adapter (``rag.adapters.openai_chat``) and the embeddings adapter
(``rag.adapters.embedders``) map their failures here, so a 401, a 429, a timeout
or a refused connection reads the same whichever request failed, and the API key
(or anything shaped like one) is masked the same way in every message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from rag.errors import ProviderError

_KEY_PATTERN = re.compile(r"\b(sk-|key-)[A-Za-z0-9_\-*.]{3,}")
MAX_DETAIL = 300


@dataclass(frozen=True)
class Service:
    """Which endpoint failed, and the settings a person can change about it."""

    kind: str  # "LLM" or "embeddings"
    endpoint: str  # host[:port], never the key
    model: str
    retries: int
    timeout: float
    model_setting: str  # the variable that names the model, e.g. RAG_LLM_MODEL
    rate_hint: str  # what to change after a 429

    @property
    def where(self) -> str:
        return f"The {self.kind} endpoint {self.endpoint}"


def redact(text: object, key: str | None) -> str:
    """``text`` without the API key or anything shaped like one, cut to a readable length."""
    out = str(text)
    if key:
        out = out.replace(key, "***")
    out = _KEY_PATTERN.sub(r"\1***", out)
    return out if len(out) <= MAX_DETAIL else out[: MAX_DETAIL - 3] + "..."


def detail(exc: BaseException) -> str:
    """The server's own error message when it sent one, else the exception text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        return json.dumps(inner) if not isinstance(inner, str) else inner
    if isinstance(body, str) and body:
        return body
    return str(getattr(exc, "message", None) or exc)


def is_http_error(exc: BaseException) -> bool:
    """True for exceptions of the HTTP stack under openai (httpx/httpcore, any generation)."""
    return type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "httpcore2"}


def provider_error(exc: BaseException, service: Service, key: str | None) -> ProviderError:
    """A ProviderError a person can act on, from any openai/HTTP exception (never showing the key)."""
    import openai

    where, retries = service.where, service.retries
    said = redact(detail(exc), key)
    if isinstance(exc, openai.AuthenticationError):
        # Never echo the server's text here: OpenAI's 401 message quotes part of the key.
        return ProviderError(f"{where} refused the API key (401): check OPENAI_API_KEY.")
    if isinstance(exc, openai.PermissionDeniedError):
        return ProviderError(
            f"{where} denied access (403): {said}", hint=f"Check that the key may use {service.model}."
        )
    if isinstance(exc, openai.NotFoundError):
        return ProviderError(
            f"{where} answered 404 for model {service.model!r}: {said}",
            hint=f"Check {service.model_setting} and OPENAI_BASE_URL (it usually ends in /v1).",
        )
    if isinstance(exc, openai.RateLimitError):
        return ProviderError(
            f"{where} rate limited the request (429) after {retries} retries: {said}",
            hint=f"Wait a little, check your quota, or {service.rate_hint}.",
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ProviderError(
                f"{where} had a server error {exc.status_code} after {retries} retries: {said}",
                hint="Try again later.",
            )
        return ProviderError(f"{where} rejected the request ({exc.status_code}): {said}")
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(
            f"{where} timed out after {service.timeout:g} s ({retries} retries).",
            hint="Try again, or raise RAG_LLM_TIMEOUT.",
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(
            f"Could not connect to {service.endpoint} (the {service.kind} endpoint) after {retries} "
            "retries: it could not be reached.",
            hint="Is the server running and OPENAI_BASE_URL right?",
        )
    if isinstance(exc, ValueError):
        return ProviderError(f"{where} sent a reply that is not valid JSON.")
    if is_http_error(exc) or isinstance(exc, OSError):
        return ProviderError(f"{where} dropped the connection in the middle of the reply.")
    return ProviderError(f"{where} failed: {type(exc).__name__}: {said}")
