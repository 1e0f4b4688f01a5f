"""The embedder registry: the fake is built through it like any provider; models load lazily."""

from __future__ import annotations

import numpy as np
import pytest

from rag.adapters import embedders as emb
from rag.config import Settings
from rag.errors import ConfigError
from rag.ports import Embedder
from tests.fakes import FAKE_EMBEDDER, WordLengths


def test_the_fake_is_built_through_the_registry():
    e = emb.build_embedder(Settings(embedder=FAKE_EMBEDDER))
    assert isinstance(e, WordLengths) and isinstance(e, Embedder)
    assert "fake" in emb.registered_embedders()
    v = e.embed(["aa bbb c dddd"])
    np.testing.assert_allclose(v[0], np.array([2, 3, 1, 4]) / np.sqrt(30), rtol=1e-6)


def test_a_lazy_embedder_knows_its_shape_and_loads_on_first_use():
    e = emb.build_embedder(Settings(embedder=FAKE_EMBEDDER), lazy=True)
    assert isinstance(e, emb.LazyEmbedder) and isinstance(e, Embedder)
    assert (e.name, e.dim, e.loaded) == (FAKE_EMBEDDER, 4, False)
    assert e.count_tokens("one two three") == 3 and e.loaded


def test_the_local_embedder_is_lazy_and_checks_its_name_at_once():
    e = emb.build_embedder(Settings(), lazy=True)
    assert (e.name, e.dim, e.max_tokens) == ("local/all-MiniLM-L6-v2", 384, 256)
    assert not e.loaded  # no model file was read
    with pytest.raises(ConfigError):
        emb.build_embedder(Settings(embedder="local/bge-small"), lazy=True)


def test_model_cache_comes_from_settings(tmp_path):
    assert emb.default_model_cache(Settings(model_cache=tmp_path / "m")) == tmp_path / "m"
    assert Settings(model_cache=tmp_path).fingerprint() == Settings().fingerprint()  # not answer-shaping
