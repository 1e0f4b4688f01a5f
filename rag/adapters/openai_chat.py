"""The LLM seam: the ChatModel protocol, its OpenAI-compatible implementation, JSON replies.

Only this module (and the embeddings adapter, through ``build_openai_client``)
imports ``openai``. Retries are the openai client's own: it retries timeouts,
connection errors, 408/409/429 and 5xx with backoff and honours Retry-After, up to
``settings.llm_max_retries`` times. Every failure leaves here as a
``ProviderError`` whose message a person can act on, and the API key never
appears in a message, a log line or a repr.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from rag.errors import ConfigError, ProviderError, SchemaError
from rag.schema import validate_schema

if TYPE_CHECKING:
    import openai

    from rag.config import Settings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```$", re.DOTALL)


@dataclass
class ChatResult:
    """One chat completion: its text, token usage, the model that answered and why it stopped."""

    text: str
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    finish_reason: str | None = None


class ChatModel(Protocol):
    """A chat model: one blocking call, one streaming call."""

    name: str  # model id
    endpoint: str  # host shown in the UI (never the key)
    last_usage: dict[str, int]  # usage of the last finished stream() ({} when the server sent none)

    def complete(
        self, messages: list[dict], *, json_schema: dict | None = None, schema_name: str = "answer"
    ) -> ChatResult:
        """The full reply; with ``json_schema`` the server is asked for JSON matching it."""
        ...

    def stream(self, messages: list[dict]) -> Iterator[str]:
        """The reply as text deltas."""
        ...


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
            if not _is_http_error(exc):
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
        out = str(text)
        key = getattr(self._client, "api_key", None)
        if isinstance(key, str) and key:
            out = out.replace(key, "***")
        return out if len(out) <= 300 else out[:297] + "..."

    def _error(self, exc: BaseException) -> ProviderError:
        """A ProviderError for people from any openai/HTTP exception (never showing the key)."""
        return provider_error(
            exc,
            endpoint=self.endpoint,
            model=self.name,
            timeout=self.timeout,
            retries=self.max_retries,
            detail=self._safe(_detail(exc)),
        )


def provider_error(
    exc: BaseException, *, endpoint: str, model: str, timeout: float, retries: int, detail: str
) -> ProviderError:
    """Map an openai exception to a ProviderError; ``detail`` must already be redacted."""
    import openai

    where = f"The LLM endpoint {endpoint}"
    if isinstance(exc, openai.AuthenticationError):
        return ProviderError(f"{where} refused the API key (401): check OPENAI_API_KEY.")
    if isinstance(exc, openai.PermissionDeniedError):
        return ProviderError(
            f"{where} denied access (403): {detail}", hint=f"Check that the key may use {model}."
        )
    if isinstance(exc, openai.NotFoundError):
        return ProviderError(
            f"{where} answered 404 for model {model!r}: {detail}",
            hint="Check RAG_LLM_MODEL and OPENAI_BASE_URL (it usually ends in /v1).",
        )
    if isinstance(exc, openai.RateLimitError):
        return ProviderError(
            f"{where} rate limited the request (429) after {retries} retries: {detail}",
            hint="Wait a little, check your quota, or raise RAG_LLM_MAX_RETRIES.",
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ProviderError(
                f"{where} had a server error {exc.status_code} after {retries} retries: {detail}",
                hint="Try again later.",
            )
        return ProviderError(f"{where} rejected the request ({exc.status_code}): {detail}")
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(
            f"{where} timed out after {timeout:g} s ({retries} retries).",
            hint="Try again, or raise RAG_LLM_TIMEOUT.",
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(
            f"Could not connect to {endpoint} (the LLM endpoint) after {retries} retries.",
            hint="Is the server running and OPENAI_BASE_URL right?",
        )
    if isinstance(exc, ValueError):
        return ProviderError(f"{where} sent a reply that is not valid JSON.")
    if _is_http_error(exc) or isinstance(exc, OSError):
        return ProviderError(f"{where} dropped the connection in the middle of the reply.")
    return ProviderError(f"{where} failed: {detail}")


def _is_http_error(exc: BaseException) -> bool:
    """True for exceptions of the HTTP stack under openai (httpx/httpcore, any generation)."""
    return type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "httpcore2"}


def _detail(exc: BaseException) -> str:
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


def _rejected_option(request: dict[str, Any], exc: Exception) -> str | None:
    """The optional field a 400/422 complains about, when we sent it and can drop it."""
    text = f"{_detail(exc)} {getattr(exc, 'body', '')}".lower()
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
