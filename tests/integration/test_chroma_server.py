"""The chroma_server fixture gives a working Chroma server (HttpClient round trip)."""

from __future__ import annotations

import uuid

import pytest

from tests.chroma_server import free_port, heartbeat, start_chroma, stop_chroma, wait_ready

pytestmark = pytest.mark.server


def test_http_client_round_trip(chroma_server):
    chromadb = pytest.importorskip("chromadb")
    host, port = chroma_server
    client = chromadb.HttpClient(host=host, port=port)
    name = f"t-{uuid.uuid4().hex[:12]}"
    col = client.create_collection(name, embedding_function=None, metadata={"hnsw:space": "cosine"})
    try:
        col.add(
            ids=["a", "b"],
            embeddings=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            documents=["alpha", "beta"],
            metadatas=[{"n": 1}, {"n": 2}],
        )
        res = col.query(query_embeddings=[[0.9, 0.1, 0.0]], n_results=2)
        assert res["ids"][0] == ["a", "b"]
        assert res["documents"][0][0] == "alpha"
        assert col.count() == 2
    finally:
        client.delete_collection(name)


def test_wait_ready_reports_a_server_that_exits(tmp_path):
    port = free_port()
    blocker = start_chroma(tmp_path / "bad", port, host="256.0.0.1")  # invalid address: exits at once
    try:
        with pytest.raises(RuntimeError, match="exited with code"):
            wait_ready("127.0.0.1", port, timeout=30, proc=blocker)
    finally:
        stop_chroma(blocker)
    assert not heartbeat("127.0.0.1", port)
