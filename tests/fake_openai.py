"""A scripted, local OpenAI-compatible HTTP server for tests (a pytest plugin).

The real ``openai`` client talks to it over HTTP, so retries, timeouts, SSE
parsing and error mapping are exercised for real. Each test scripts the chat
replies it wants::

    def test_x(fake_openai):
        fake_openai.script(error(429, headers={"Retry-After": "1"}), ok({"answer": 1}))
        client = openai.OpenAI(api_key="k", base_url=fake_openai.base_url)

Chat replies come from the scripted queue first, then from ``responder``
(``f(request_json) -> Reply | str | dict``), then from ``default``; with none
of those the server answers 400 "nothing scripted" (400 so the client does not
retry and the test fails loudly). Embeddings are deterministic hash-seeded unit
vectors unless a reply is scripted with ``script(..., endpoint="embeddings")``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

DEFAULT_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
MODEL = "fake-model"


@dataclass
class Reply:
    """One scripted server reply (build with ok, error, delay, malformed, truncated, refusal, close)."""

    kind: str  # ok | error | malformed | refusal | close
    content: str | None = None
    usage: dict[str, int] | None = None
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    refusal: str | None = None
    finish_reason: str = "stop"


def ok(
    content: str | dict | list = "ok", usage: dict[str, int] | None = None, finish_reason: str = "stop"
) -> Reply:
    """A 200 chat completion whose message content is ``content`` (dicts are JSON-encoded)."""
    text = content if isinstance(content, str) else json.dumps(content)
    return Reply("ok", content=text, usage=usage, finish_reason=finish_reason)


def error(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    """An HTTP error; ``body`` defaults to an OpenAI-style error object."""
    if body is None:
        body = {"error": {"message": f"fake error {status}", "type": "fake", "code": None}}
    return Reply("error", status=status, body=body, headers=dict(headers or {}))


def delay(seconds: float, reply: Reply | None = None) -> Reply:
    """Wait ``seconds`` before sending ``reply`` (default ok())."""
    base = reply if reply is not None else ok()
    return Reply(**{**base.__dict__, "delay": seconds})


def malformed(body: str = '{"id": "x", "choices": [') -> Reply:
    """A 200 whose HTTP body is not valid JSON."""
    return Reply("malformed", body=body)


def truncated(content: str = '{"sentences": [{"text": "The group met in Mos') -> Reply:
    """A completion cut off mid-JSON (finish_reason "length")."""
    return ok(content, finish_reason="length")


def refusal(text: str = "I can't help with that.") -> Reply:
    """A completion the model refused: message.refusal set, content None."""
    return Reply("refusal", refusal=text)


def close(partial: str | None = None) -> Reply:
    """Drop the connection; when streaming, after sending ``partial`` as deltas."""
    return Reply("close", content=partial)


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


def fake_vector(text: str, dim: int = 16) -> list[float]:
    """The deterministic unit vector the server returns for ``text``."""
    raw = b""
    counter = 0
    while len(raw) < dim * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    ints = struct.unpack(f"<{dim}i", raw[: dim * 4])
    vec = [i / 2**31 for i in ints]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


class FakeOpenAI:
    """The server plus its script and request log (see the module docstring)."""

    def __init__(self, embedding_dim: int = 16) -> None:
        self.embedding_dim = embedding_dim
        self.responder: Callable[[dict], Reply | str | dict] | None = None
        self.default: Reply | None = None
        self.requests: list[Recorded] = []
        self._queues: dict[str, deque[Reply]] = {"chat": deque(), "embeddings": deque()}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The base URL to give the openai client (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed replies and close the socket."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def script(self, *replies: Reply, endpoint: str = "chat") -> None:
        """Queue replies for "chat" (completions) or "embeddings", served in order."""
        with self._lock:
            self._queues[endpoint].extend(replies)

    def pending(self, endpoint: str = "chat") -> int:
        """Scripted replies not yet served."""
        with self._lock:
            return len(self._queues[endpoint])

    def chat_requests(self) -> list[Recorded]:
        """The recorded chat completion requests, in order."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def _next(self, endpoint: str, request: dict) -> Reply | None:
        with self._lock:
            if self._queues[endpoint]:
                return self._queues[endpoint].popleft()
        if endpoint == "chat" and self.responder is not None:
            answer = self.responder(request)
            return answer if isinstance(answer, Reply) else ok(answer)
        return self.default if endpoint == "chat" else None

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def __enter__(self) -> FakeOpenAI:  # noqa: PYI034 - start() returns self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up (timeouts, tests that close early)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: simple and close() is unambiguous
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""

    def do_GET(self) -> None:
        self.server.fake._record(Recorded("GET", self.path, self._headers(), None))
        if self.path.rstrip("/").endswith("/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "fake"}],
                },
            )
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        fake = self.server.fake
        fake._record(Recorded("POST", self.path, self._headers(), body))
        if self.path.endswith("/chat/completions"):
            self._chat(body if isinstance(body, dict) else {})
        elif self.path.endswith("/embeddings"):
            self._embeddings(body if isinstance(body, dict) else {})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _abort(self) -> None:
        """Close the socket without a (complete) response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _common(self, reply: Reply | None) -> bool:
        """Handle delay, missing script, error, malformed and close; True when done."""
        fake = self.server.fake
        if reply is not None and reply.delay:
            fake._sleep(reply.delay)
        if reply is None:
            self._json(400, {"error": {"message": "fake_openai: nothing scripted for this request"}})
        elif reply.kind == "error":
            self._json(reply.status, reply.body, reply.headers)
        elif reply.kind == "malformed":
            self._json(200, reply.body)
        elif reply.kind == "close" and reply.content is None:
            self._abort()
        else:
            return False
        return True

    def _chat(self, request: dict) -> None:
        reply = self.server.fake._next("chat", request)
        if self._common(reply):
            return
        assert reply is not None
        model = request.get("model") or MODEL
        if request.get("stream"):
            self._stream(reply, model, request)
        else:
            self._json(200, _completion(reply, model))

    def _stream(self, reply: Reply, model: str, request: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        for chunk in _stream_chunks(reply, model, include_usage):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        if reply.kind == "close":
            self._abort()
            return
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _embeddings(self, request: dict) -> None:
        fake = self.server.fake
        reply = fake._next("embeddings", request)
        if reply is not None and self._common(reply):
            return
        inputs = request.get("input")
        texts = [inputs] if isinstance(inputs, (str, int)) else list(inputs or [])
        dim = int(request.get("dimensions") or fake.embedding_dim)
        as_b64 = request.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vec = fake_vector(json.dumps(text) if not isinstance(text, str) else text, dim)
            emb: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if as_b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(max(1, len(str(t)) // 4) for t in texts)
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": request.get("model") or MODEL,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def _completion(reply: Reply, model: str) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
    return {
        "id": f"chatcmpl-fake-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": dict(reply.usage or DEFAULT_USAGE),
    }


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _stream_chunks(reply: Reply, model: str, include_usage: bool) -> Iterator[dict]:
    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    if reply.kind == "refusal":
        yield chunk({"refusal": reply.refusal})
    else:
        for piece in _pieces(reply.content or ""):
            yield chunk({"content": piece})
    if reply.kind == "close":
        return
    yield chunk({}, reply.finish_reason)
    if include_usage:
        yield {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": dict(reply.usage or DEFAULT_USAGE),
        }


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI-compatible server, stopped after the test."""
    with FakeOpenAI() as server:
        yield server
