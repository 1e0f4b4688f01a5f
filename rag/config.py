"""One typed settings object, read from the environment in one place.

Every field has a default and a description (``rag config`` prints them). The
environment variable for a field is ``RAG_`` + the field name in upper case,
except the OpenAI ones, which use the names the ``openai`` package documents.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rag.errors import ConfigError


def _f(
    default: Any, doc: str, env: str | None = None, secret: bool = False, shapes_answers: bool = True
) -> Any:
    # repr=False for secrets: a Settings (or a Pipeline holding one) may end up in a log or an error.
    # shapes_answers=False: left out of the fingerprint (where a cache lives does not change an answer).
    meta = {"doc": doc, "env": env, "secret": secret, "shapes_answers": shapes_answers}
    return field(default=default, repr=not secret, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """All knobs of Dossier. Build with ``Settings.from_env()`` or ``Settings(...)``."""

    # --- storage -------------------------------------------------------------
    store: Path = _f(Path(".dossier/store"), "Folder of the embedded Chroma store.", env="RAG_STORE")
    chroma_host: str | None = _f(
        None, "Chroma server host; when set, use chromadb.HttpClient instead of the folder."
    )
    chroma_port: int = _f(8000, "Chroma server port (with RAG_CHROMA_HOST).")
    collection: str = _f("dossier", "Prefix of the Chroma collection names.")

    # --- embeddings ----------------------------------------------------------
    embedder: str = _f(
        "local/all-MiniLM-L6-v2",
        "Embedder as provider/model: local/all-MiniLM-L6-v2 (onnxruntime), "
        "st/all-MiniLM-L6-v2 (sentence-transformers), openai/text-embedding-3-small.",
    )
    embed_batch_size: int = _f(32, "Texts per embedding batch.")
    model_cache: Path | None = _f(
        None,
        "Folder for the ONNX graphs built from the model weights (default ~/.cache/dossier/models).",
        shapes_answers=False,
    )

    # --- loading and chunking --------------------------------------------------
    max_file_mb: float = _f(25.0, "Files larger than this many MB are rejected with a message.")
    chunk_tokens: int = _f(
        254,
        "Target chunk length in the embedder's word pieces (never above its limit). 254 fills MiniLM's "
        "window; chosen over 200 on the MultiHop-RAG dev split (bench/tune_retrieval.py).",
    )
    chunk_overlap: int = _f(50, "Overlap between consecutive chunks, in word pieces.")

    # --- retrieval -----------------------------------------------------------
    top_k: int = _f(6, "Passages returned by search and given to answers.")
    candidates: int = _f(
        40, "Candidates taken from each retriever before fusion (tuned on the MultiHop-RAG dev split)."
    )
    rrf_k: int = _f(20, "Reciprocal-rank-fusion constant (tuned on the MultiHop-RAG dev split).")
    dense_weight: float = _f(
        0.2, "Weight of the dense ranking in fusion (tuned on the MultiHop-RAG dev split)."
    )
    lexical_weight: float = _f(1.0, "Weight of the BM25 ranking in fusion.")
    dedupe_threshold: float = _f(0.8, "Word-shingle containment above which two passages count as one.")

    # --- answering and briefs --------------------------------------------------
    answer_sentences: int = _f(3, "Most sentences in an extractive answer.")
    answer_embed_sentences: int = _f(
        12,
        "Candidate sentences embedded per question in extractive mode: the best by the cheap features "
        "(question words, answer type, passage rank); the rest are dropped. Bounds ask latency; "
        "12 costs under one point of accuracy on the dev splits (bench/calibrate_extractive.py --embed).",
    )
    brief_words: int = _f(120, "Default word limit of a brief.")

    # --- LLM -----------------------------------------------------------------
    openai_api_key: str | None = _f(None, "API key; enables LLM mode.", env="OPENAI_API_KEY", secret=True)
    openai_base_url: str | None = _f(None, "Any OpenAI-compatible endpoint.", env="OPENAI_BASE_URL")
    llm_model: str = _f("gpt-4o-mini", "Chat model used in LLM mode.")
    llm_timeout: float = _f(60.0, "Seconds before one LLM request times out.")
    llm_max_retries: int = _f(2, "Retries on timeouts, 429 and 5xx (backoff honours Retry-After).")
    context_tokens: int = _f(6000, "Token budget for retrieved passages in an LLM prompt.")
    llm_extractive_fallback: bool = _f(True, "Fall back to the extractive answer when the LLM fails.")

    @property
    def llm_enabled(self) -> bool:
        """True when an LLM endpoint is configured."""
        return bool(self.openai_api_key)

    @property
    def server_mode(self) -> bool:
        """True when the store is a Chroma server rather than a local folder."""
        return bool(self.chroma_host)

    @classmethod
    def env_name(cls, name: str) -> str:
        """The environment variable that sets field ``name``."""
        meta = {f.name: f.metadata for f in fields(cls)}[name]
        return meta.get("env") or f"RAG_{name.upper()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every field from the environment; explicit ``overrides`` win."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(cls.env_name(f.name))
            if raw is not None and raw != "":
                values[f.name] = _coerce(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ConfigError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_tokens ({self.chunk_tokens})."
            )
        if self.top_k < 1:
            raise ConfigError("top_k must be at least 1.")
        if self.answer_embed_sentences < 1:
            raise ConfigError("answer_embed_sentences must be at least 1.")
        object.__setattr__(self, "store", Path(self.store).expanduser())
        if self.model_cache is not None:
            object.__setattr__(self, "model_cache", Path(self.model_cache).expanduser())

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def public_dict(self) -> dict[str, Any]:
        """Settings as plain data with secrets masked (safe for logs, run files and the page)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                value = "***" if value else None
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    def fingerprint(self, extra: Mapping[str, str] | None = None) -> str:
        """Short hash of the settings (and e.g. prompt files) that shape an answer."""
        data = self.public_dict()
        data.pop("openai_api_key", None)
        for f in fields(self):
            if not f.metadata.get("shapes_answers", True):
                data.pop(f.name, None)
        data.update(extra or {})
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any, str]]:
        """(field, environment variable, default, description) for documentation."""
        return [(f.name, cls.env_name(f.name), f.default, f.metadata["doc"]) for f in fields(cls)]


def _coerce(f: dataclasses.Field, raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if "bool" in kind:
            if raw.strip().lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.strip().lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("Path"):  # also "Path | None"
            return Path(raw)
    except ValueError:
        raise ConfigError(f"{Settings.env_name(f.name)}={raw!r} is not a valid {kind}.") from None
    return raw


def project_folder(name: str) -> Path:
    """A top-level folder of the project (``prompts``, ``eval``): the checkout's, else the installed copy.

    In a checkout (and an editable install) the folders sit beside ``rag/``; a wheel installs them
    under ``<prefix>/share/dossier/`` (``[tool.setuptools.data-files]`` in pyproject.toml).
    """
    import sys

    here = Path(__file__).resolve().parent.parent / name
    if here.is_dir():
        return here
    installed = Path(sys.prefix) / "share" / "dossier" / name
    if installed.is_dir():
        return installed
    raise ConfigError(
        f"Dossier's {name}/ folder is missing (looked in {here} and {installed}).",
        hint="Reinstall Dossier from its repository (`bash scripts/setup`).",
    )
