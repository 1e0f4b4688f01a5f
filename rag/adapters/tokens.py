"""Token counting for LLM context budgets (tiktoken, with an honest offline fallback).

tiktoken downloads its BPE files on first use and, offline, that fails (or hangs
behind a firewall). So before asking tiktoken for an encoding we check that its
file is already in the cache folder (TIKTOKEN_CACHE_DIR) with the right sha256;
when it is not, we never call tiktoken and count approximately instead
(ceil(chars / 4)), saying so in ``note``. A corrupt cache file is also skipped:
tiktoken would delete it and try to download it again.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import EncodingUnavailableError

if TYPE_CHECKING:
    from rag.config import Settings

_BASE = "https://openaipublic.blob.core.windows.net/encodings/"
# Download URL and sha256 of each encoding tiktoken can load from one file, as in
# tiktoken_ext/openai_public.py (a test checks they still match).
ENCODING_FILES: dict[str, tuple[str, str]] = {
    "o200k_base": (
        _BASE + "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "o200k_harmony": (
        _BASE + "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        _BASE + "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "p50k_base": (
        _BASE + "p50k_base.tiktoken",
        "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    ),
    "p50k_edit": (
        _BASE + "p50k_base.tiktoken",
        "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    ),
    "r50k_base": (
        _BASE + "r50k_base.tiktoken",
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    ),
}
FALLBACK_ENCODINGS = ("o200k_base", "cl100k_base")
CHARS_PER_TOKEN = 4


def tiktoken_cache_dir() -> Path | None:
    """The folder tiktoken reads cached encodings from (None when caching is disabled)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return Path(os.environ[var]) if os.environ[var] else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def cached_encoding_problem(name: str) -> str | None:
    """Why encoding ``name`` cannot be loaded without the network (None when its cache file is good)."""
    if name not in ENCODING_FILES:
        return "Dossier does not know where tiktoken keeps it"
    folder = tiktoken_cache_dir()
    if folder is None:
        return "TIKTOKEN_CACHE_DIR is empty, which disables tiktoken's cache"
    url, sha256 = ENCODING_FILES[name]
    path = folder / hashlib.sha1(url.encode()).hexdigest()
    if not path.is_file():
        if "TIKTOKEN_CACHE_DIR" in os.environ:
            return f"offline and not in TIKTOKEN_CACHE_DIR ({folder})"
        return f"offline and not in TIKTOKEN_CACHE_DIR, which is unset; looked in {folder}"
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        return f"its cache file {path} is corrupt (sha256 mismatch)"
    return None


def encoding_name_for_model(model: str) -> str | None:
    """tiktoken's encoding for ``model`` ("provider/model" accepted), or None when unknown."""
    import tiktoken.model

    try:
        return tiktoken.model.encoding_name_for_model(model.rsplit("/", 1)[-1])
    except KeyError:
        return None


def _load(names: Sequence[str]) -> tuple[Any, str | None, list[str]]:
    """The first loadable encoding among ``names``: (encoding or None, its name, problems seen)."""
    import tiktoken

    problems: list[str] = []
    for name in names:
        problem = cached_encoding_problem(name)
        if problem is None:
            try:
                return tiktoken.get_encoding(name), name, problems
            except Exception as exc:  # noqa: BLE001 - any failure means "use the next one"
                problem = f"tiktoken failed: {type(exc).__name__}: {exc}"
        problems.append(f"{name}: {problem}")
    return None, None, problems


class TokenCounter:
    """Counts tokens as the configured chat model would; ``exact`` is False when only estimating."""

    def __init__(self, model: str, *, require_exact: bool = False) -> None:
        self.model = model
        wanted = encoding_name_for_model(model)
        names = list(dict.fromkeys([n for n in (wanted, *FALLBACK_ENCODINGS) if n]))
        self._encoding, self.encoding_name, problems = _load(names)
        self.exact = self._encoding is not None
        first = names[0]
        if self.exact:
            self.note = ""
            if wanted is None:
                self.note = f"tiktoken does not know the model {model!r}; counting with {self.encoding_name}"
            elif self.encoding_name != first:
                self.note = (
                    f"tiktoken encoding {first} could not be loaded; counting with {self.encoding_name}"
                )
        else:
            reason = problems[0].split(": ", 1)[1] if problems else "unknown reason"
            self.note = (
                f"tiktoken encoding {first} could not be loaded ({reason}); token counts are estimates"
            )
        if require_exact and not self.exact:
            raise EncodingUnavailableError(
                self.note,
                hint="Point TIKTOKEN_CACHE_DIR at a folder with the "
                "encoding files (see the README, 'tiktoken offline').",
            )

    def __repr__(self) -> str:
        return f"TokenCounter(model={self.model!r}, encoding={self.encoding_name!r}, exact={self.exact})"

    def count(self, text: str) -> int:
        """Tokens in ``text`` (an estimate when ``exact`` is False)."""
        if self._encoding is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        # Reports may contain "<|endoftext|>" and the like: count them as text, never raise.
        return len(self._encoding.encode(text, disallowed_special=()))

    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int:
        """Tokens of a chat request: contents plus OpenAI's per-message overhead (3 each, 3 to prime)."""
        return 3 + sum(3 + self.count(str(m.get("content") or "")) for m in messages)

    def pack(self, passages: Sequence[str], budget: int, *, overhead: int = 0) -> int:
        """How many leading ``passages`` fit in ``budget`` tokens (``overhead`` tokens added per passage)."""
        used = 0
        for i, passage in enumerate(passages):
            used += self.count(passage) + overhead
            if used > budget:
                return i
        return len(passages)


class LazyTokenCounter:
    """A ``TokenCounter`` for ``model`` built on first use (extractive mode never pays for tiktoken)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._counter: TokenCounter | None = None
        self._lock = threading.Lock()

    @property
    def counter(self) -> TokenCounter:
        """The real counter (built once, thread-safe: page sessions share one pipeline)."""
        with self._lock:
            if self._counter is None:
                self._counter = TokenCounter(self.model)
            return self._counter

    @property
    def exact(self) -> bool:
        return self.counter.exact

    @property
    def note(self) -> str:
        return self.counter.note

    def count(self, text: str) -> int:
        return self.counter.count(text)

    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int:
        return self.counter.count_messages(messages)

    def pack(self, passages: Sequence[str], budget: int, *, overhead: int = 0) -> int:
        return self.counter.pack(passages, budget, overhead=overhead)


def lazy_token_counter(settings: Settings) -> LazyTokenCounter:
    """The one way the answerer and the summarizer get a token counter when none is passed in."""
    return LazyTokenCounter(settings.llm_model)
