"""The `rag` console script end to end, as a user runs it (real processes, real store)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE

RAG = [sys.executable, "-m", "rag.cli"]


def rag(
    *args: str, store: Path, check: int | None = 0, env: dict | None = None
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "RAG_STORE": str(store), **(env or {})}
    proc = subprocess.run([*RAG, *args], capture_output=True, text=True, env=full_env, cwd=REPO, timeout=300)
    if check is not None:
        assert proc.returncode == check, proc.stderr + proc.stdout
    return proc


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with data/ ingested by the CLI, shared by this module's read-only tests."""
    path = tmp_path_factory.mktemp("cli") / "store"
    out = rag("ingest", "data/", "--json", store=path)
    data = json.loads(out.stdout)
    assert [a["source"] for a in data["added"]] == [SAMPLE.name]
    assert data["rejected"] == [] and data["unchanged"] == [] and data["updated"] == []
    return path


def test_search_returns_the_co_chair_passage_first(store):
    out = rag("search", "who co-chaired the meeting in Moscow", "--json", store=store)
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["source"] == SAMPLE.name
    assert "co-chaired the meeting with Andrey A. Boytsov" in hits[0]["text"]
    assert {"start", "end", "score", "chunk_id"} <= hits[0].keys()


def test_reingest_reports_unchanged(store):
    data = json.loads(rag("ingest", "data/", "--json", store=store).stdout)
    assert data["added"] == [] and [u["source"] for u in data["unchanged"]] == [SAMPLE.name]


def test_sources_and_status(store):
    sources = json.loads(rag("sources", "--json", store=store).stdout)["sources"]
    assert sources[0]["source"] == SAMPLE.name and sources[0]["date"] is None
    assert "no publication date" in sources[0]["date_note"]
    status = json.loads(rag("status", "--json", store=store).stdout)
    assert status["mode"] == "extractive" and status["embedder"] == "local/all-MiniLM-L6-v2"
    assert status["reports"] == 1 and status["chunks"] >= 1


def test_bad_files_exit_1_with_one_line_each(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copy(SAMPLE, root / "good.txt")
    (root / "empty.txt").write_text("")
    (root / "fake.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    proc = rag("ingest", str(root), "--json", store=tmp_path / "s", check=1)
    data = json.loads(proc.stdout)
    assert [a["source"] for a in data["added"]] == ["good.txt"]
    rejected = {Path(r["path"]).name: r["reason"] for r in data["rejected"]}
    assert set(rejected) == {"empty.txt", "fake.pdf"}
    lines = [line for line in proc.stderr.splitlines() if line.startswith("rejected:")]
    assert len(lines) == 2 and all(("empty.txt" in line) or ("fake.pdf" in line) for line in lines)


def test_forget_and_json_errors(tmp_path):
    store = tmp_path / "s"
    rag("ingest", str(SAMPLE), store=store)
    out = json.loads(rag("forget", SAMPLE.name, "--json", store=store).stdout)
    assert out == {"source": SAMPLE.name, "removed": True}
    assert json.loads(rag("sources", "--json", store=store).stdout)["sources"] == []
    missing = rag("forget", "nope.txt", "--json", store=store, check=1)
    assert json.loads(missing.stdout)["removed"] is False


def test_store_option_overrides_environment(tmp_path):
    rag("ingest", str(SAMPLE), "--store", str(tmp_path / "opt"), store=tmp_path / "env")
    assert (tmp_path / "opt").is_dir() and not (tmp_path / "env").exists()
