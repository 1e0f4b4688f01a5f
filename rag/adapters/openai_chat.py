"""The OpenAI-compatible chat model (``rag.ports.ChatModel``) and the one place the openai client is built.

Only the adapters import ``openai``: this module, the embeddings adapter (with the
client built here) and the shared error mapping ``rag.adapters.openai_errors``. Retries are the openai client's own: it retries timeouts,
connection errors, 408/409/429 and 5xx with backoff and honours Retry-After, up to
``settings.llm_max_retries`` times. Every failure leaves here as a
``ProviderError`` whose message a person can act on, and the API key never
appears in a message, a log line or a repr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rag.adapters.openai_errors import Service, detail, is_http_error, provider_error, redact
from rag.errors import ConfigError, ProviderError
from rag.ports import ChatModel
from rag.types import ChatResult

if TYPE_CHECKING:
    import openai

    from rag.config import Settings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def endpoint_host(base_url: str | None) -> str:
    """``host[:port]`` of an endpoint URL, without credentials, path or query."""
    parts = urlsplit(base_url or DEFAULT_BASE_URL)
    host = parts.hostname or "unknown host"
    return f"{host}:{parts.port}" if parts.port else host


def build_openai_client(settings: Settings) -> openai.OpenAI:
    """The one place the openai client is built (chat and embeddings share it)."""
    import openai

    if not settings.openai_api_key:
        raise ConfigError("No API key: set OPENAI_API_KEY to use an LLM or OpenAI embeddings.")
    return openai.OpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url or DEFAULT_BASE_URL,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )


def build_chat_model(settings: Settings, client: openai.OpenAI | None = None) -> ChatModel | None:
    """The configured chat model, or None when no API key is set (extractive mode)."""
    if not settings.openai_api_key:
        return None
    return OpenAIChatModel(client or build_openai_client(settings), settings.llm_model)


class _OptionRejected(Exception):
    """The server answered 400/422 about an optional request field we can do without."""

    def __init__(self, option: str) -> None:
        super().__init__(option)
        self.option = option


class OpenAIChatModel:
    """ChatModel over any OpenAI-compatible chat completions endpoint (temperature 0)."""

    def __init__(self, client: openai.OpenAI, name: str) -> None:
        self._client = client
        self.name = name
        self.endpoint = endpoint_host(str(client.base_url))
        timeout = client.timeout  # a number as we build it; an httpx Timeout if the caller built the client
        self.timeout = (
            float(timeout) if isinstance(timeout, (int, float)) else float(getattr(timeout, "read", 0) or 0)
        )
        self.max_retries = int(client.max_retries)
        key = getattr(client, "api_key", None)
        self._key = key if isinstance(key, str) else None
        self.last_usage: dict[str, int] = {}
        self.last_finish_reason: str | None = None
        self._json_schema_ok = True  # False once the server rejected response_format json_schema
        self._stream_usage_ok = True  # False once the server rejected stream_options

    def __repr__(self) -> str:
        return f"OpenAIChatModel(name={self.name!r}, endpoint={self.endpoint!r})"

    def complete(
        self, messages: list[dict], *, json_schema: dict | None = None, schema_name: str = "answer"
    ) -> ChatResult:
        """The full reply; with ``json_schema``, structured output (falls back to json_object once)."""
        try:
            response = self._call(self._request(messages, json_schema, schema_name))
        except _OptionRejected:
            log.warning(
                "%s rejected response_format json_schema; using json_object with the schema "
                "in the system prompt",
                self.endpoint,
            )
            self._json_schema_ok = False
            response = self._call(self._request(messages, json_schema, schema_name), fallback=False)
        result = self._result(response)
        log.debug(
            "chat %s at %s: finish=%s usage=%s", self.name, self.endpoint, result.finish_reason, result.usage
        )
        return result

    def stream(self, messages: list[dict]) -> Iterator[str]:
        """Text deltas of the reply; ``last_usage`` and ``last_finish_reason`` are set when it ends."""
        import openai

        self.last_usage, self.last_finish_reason = {}, None
        try:
            chunks = self._call(self._stream_request(messages))
        except _OptionRejected:
            self._stream_usage_ok = False
            chunks = self._call(self._stream_request(messages), fallback=False)
        try:
            for chunk in chunks:
                if getattr(chunk, "usage", None):
                    self.last_usage = _usage(chunk.usage)
                for choice in chunk.choices or []:
                    if getattr(choice.delta, "refusal", None):
                        raise ProviderError(
                            f"The model {self.name} refused: {self._safe(choice.delta.refusal)}"
                        )
                    self.last_finish_reason = choice.finish_reason or self.last_finish_reason
                    if choice.delta.content:
                        yield choice.delta.content
            if self.last_finish_reason is None:  # every complete stream ends with a finish_reason
                raise ProviderError(
                    f"The LLM endpoint {self.endpoint} dropped the connection in the middle of the reply.",
                    hint="Try again.",
                )
            if self.last_finish_reason == "content_filter":
                raise ProviderError(f"The LLM endpoint {self.endpoint} withheld the reply (content filter).")
        except (openai.OpenAIError, ValueError, OSError) as exc:
            raise self._error(exc) from None
        except Exception as exc:  # the HTTP layer's own errors (e.g. the server hung up mid-stream)
            if not is_http_error(exc):
                raise
            raise self._error(exc) from None
        finally:
            getattr(chunks, "close", lambda: None)()

    def _request(self, messages: list[dict], json_schema: dict | None, schema_name: str) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.name, "messages": messages, "temperature": 0}
        if json_schema is None:
            return request
        if self._json_schema_ok:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": json_schema, "strict": True},
            }
        else:
            request["response_format"] = {"type": "json_object"}
            request["messages"] = with_schema_instructions(messages, json_schema)
        return request

    def _stream_request(self, messages: list[dict]) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.name, "messages": messages, "temperature": 0, "stream": True}
        if self._stream_usage_ok:
            request["stream_options"] = {"include_usage": True}
        return request

    def _call(self, request: dict[str, Any], *, fallback: bool = True) -> Any:
        """Send one request; map every failure to ProviderError (or _OptionRejected for a fallback)."""
        import openai

        try:
            return self._client.chat.completions.create(**request)
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            option = _rejected_option(request, exc)
            if fallback and option:
                raise _OptionRejected(option) from None
            raise self._error(exc) from None
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: the HTTP body was not JSON
            raise self._error(exc) from None

    def _result(self, response: Any) -> ChatResult:
        choices = getattr(response, "choices", None)
        if not choices:
            raise ProviderError(f"The LLM endpoint {self.endpoint} sent a reply without any choices.")
        choice = choices[0]
        message = choice.message
        if getattr(message, "refusal", None):
            raise ProviderError(f"The model {self.name} refused: {self._safe(message.refusal)}")
        if choice.finish_reason == "content_filter":
            raise ProviderError(f"The LLM endpoint {self.endpoint} withheld the reply (content filter).")
        if message.content is None:
            raise ProviderError(
                f"The LLM endpoint {self.endpoint} sent an empty reply "
                f"(finish_reason={choice.finish_reason})."
            )
        return ChatResult(
            message.content,
            _usage(getattr(response, "usage", None)),
            getattr(response, "model", None) or self.name,
            choice.finish_reason,
        )

    def _safe(self, text: object) -> str:
        """``text`` with the API key masked, cut to a readable length."""
        return redact(text, self._key)

    def _error(self, exc: BaseException) -> ProviderError:
        """A ProviderError for people from any openai/HTTP exception (never showing the key)."""
        service = Service(
            "LLM",
            self.endpoint,
            self.name,
            self.max_retries,
            self.timeout,
            "RAG_LLM_MODEL",
            "raise RAG_LLM_MAX_RETRIES",
        )
        return provider_error(exc, service, self._key)


def _rejected_option(request: dict[str, Any], exc: Exception) -> str | None:
    """The optional field a 400/422 complains about, when we sent it and can drop it."""
    text = f"{detail(exc)} {getattr(exc, 'body', '')}".lower()
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema" and ("response_format" in text or "json_schema" in text):
        return "response_format"
    if "stream_options" in request and ("stream_options" in text or "include_usage" in text):
        return "stream_options"
    return None


def _usage(usage: Any) -> dict[str, int]:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {k: getattr(usage, k) for k in keys if isinstance(getattr(usage, k, None), int)}


def with_schema_instructions(messages: list[dict], schema: dict) -> list[dict]:
    """``messages`` with the JSON schema spelled out in the system message (for json_object mode)."""
    note = "Reply with one JSON object only, no other text, that matches this JSON schema:\n" + json.dumps(
        schema, indent=1
    )
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0].get('content') or ''}\n\n{note}"
    else:
        out.insert(0, {"role": "system", "content": note})
    return out
