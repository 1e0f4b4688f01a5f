"""`rag eval` end to end on the bundled gold set: real pipeline, run file, scores, reports, gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main
from rag.evaluation.scoring import read_run


@pytest.fixture(scope="module")
def gold_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    code = main(
        ["eval", "--suite", "gold", "--out", str(out / "out"), "--store", str(out / "store"), "--gate"]
    )
    return code, out / "out"


def test_gold_suite_runs_offline_and_passes_its_gate(gold_run):
    code, out = gold_run
    assert code == 0
    for name in ("run.jsonl", "scores.json", "report.md", "report.html"):
        assert (out / name).is_file(), name
    meta, records = read_run(out / "run.jsonl")
    assert meta["suite"] == "gold" and meta["settings"]["openai_api_key"] is None
    assert {r["type"] for r in records} == {"qa", "brief"}
    qa = [r for r in records if r["type"] == "qa"]
    assert all(len(r["retrieved"]) >= 1 and "ask" in r["latency"] for r in qa)


def test_scores_have_cis_baselines_and_types(gold_run):
    _, out = gold_run
    scored = json.loads((out / "scores.json").read_text())
    hits = scored["metrics"]["gold/hits_at_10_doc"]
    assert hits["n"] == 12 and hits["ci"][0] <= hits["value"] <= hits["ci"][1]
    assert "gold/hits_at_10_doc" in scored["baselines"]["bm25"]
    assert scored["metrics"]["gold/citation_spans_exact"]["value"] == 1.0
    assert scored["metrics"]["gold/abstention_recall"]["value"] >= 0.75
    assert any(k.startswith("gold:") for k in scored["by_type"])
    html = (out / "report.html").read_text()
    assert "<svg" in html and "Who co-chaired the meeting in Moscow?" in html


def test_gate_fails_below_a_floor(gold_run, tmp_path):
    _, out = gold_run
    strict = tmp_path / "strict.toml"
    strict.write_text('[floors]\n"gold/hits_at_10_doc" = 1.01\n')
    code = main(
        [
            "eval",
            "--suite",
            "gold",
            "--stage",
            "score",
            "--run-file",
            str(out / "run.jsonl"),
            "--out",
            str(tmp_path / "rescored"),
            "--gate",
            "--thresholds",
            str(strict),
        ]
    )
    assert code == 1


def test_gate_flags_a_regression_against_a_baseline(gold_run, tmp_path):
    _, out = gold_run
    scored = json.loads((out / "scores.json").read_text())
    better = json.loads(json.dumps(scored))
    for q in better["questions"]:  # a baseline whose answers were all exact matches
        if "exact_match" in q["values"]:
            q["values"]["exact_match"] = 1.0
    better["metrics"]["gold/exact_match"]["value"] = 1.0
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(better))
    th = tmp_path / "reg.toml"
    th.write_text('[regression]\nmax_drop = 0.05\nmetrics = ["gold/exact_match", "gold/hits_at_10_doc"]\n')
    code = main(
        [
            "eval",
            "--suite",
            "gold",
            "--stage",
            "score",
            "--run-file",
            str(out / "run.jsonl"),
            "--out",
            str(tmp_path / "cmp"),
            "--gate",
            "--thresholds",
            str(th),
            "--baseline",
            str(base),
        ]
    )
    # Extractive answers are whole sentences, so they are never exact matches: a drop on every question.
    assert scored["metrics"]["gold/exact_match"]["value"] == 0.0
    assert code == 1
    rows = {r["metric"]: r for r in json.loads((tmp_path / "cmp" / "comparison.json").read_text())}
    assert rows["gold/exact_match"]["regressed"] and not rows["gold/hits_at_10_doc"]["regressed"]
    assert (tmp_path / "cmp" / "comparison.json").is_file()


def test_the_runner_reports_progress_as_done_total_label():
    """One progress order everywhere: progress(done, total, label), as the page's bar takes it."""
    from rag.evaluation import runner
    from rag.types import IngestReport

    class Pipe:
        def ingest(self, paths, progress=None):
            progress(1, 2, "a.txt")
            progress(2, 2, "b.txt")
            return IngestReport()

    calls = []
    part = runner.Part("gold", "qa", [], folder=Path("data"))
    runner._index(part, Pipe(), lambda done, total, label: calls.append((done, total, label)))
    assert calls == [(1, 2, "gold: indexing"), (2, 2, "gold: indexing")]
