"""Statistics, reports and the CI gate of the evaluation harness."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from rag.errors import ConfigError
from rag.evaluation import gate, report, stats

# --- stats ---------------------------------------------------------------------------------


def test_bootstrap_is_deterministic():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    a, b = stats.bootstrap_ci(values), stats.bootstrap_ci(values)
    assert a == b and a.value == 0.7 and a.n == 10 and a.lo < 0.7 < a.hi
    spread = [0.1 * i**1.5 for i in range(30)]
    assert stats.bootstrap_ci(spread, seed=1) == stats.bootstrap_ci(spread, seed=1)
    assert stats.bootstrap_ci(spread, seed=1) != stats.bootstrap_ci(spread, seed=2)
    assert stats.summarize([]) == {"value": None, "ci": None, "n": 0}


def test_bootstrap_coverage_is_about_95_percent():
    rng = np.random.default_rng(123)
    covered = 0
    trials = 200
    for _ in range(trials):
        sample = rng.random(100) < 0.7
        ci = stats.bootstrap_ci(sample.tolist(), seed=int(rng.integers(1 << 30)))
        covered += ci.lo <= 0.7 <= ci.hi
    assert 0.88 <= covered / trials <= 0.99


def test_paired_bootstrap():
    base = {f"q{i}": float(i % 2) for i in range(200)}
    same = stats.paired_bootstrap(base, base)
    assert same.delta == 0.0 and same.lo == same.hi == 0.0 and same.p_value == 1.0
    worse = dict(base)
    for i in range(0, 200, 2):  # 50 of the 100 correct answers lost
        worse[f"q{i + 1}"] = 0.0 if i % 4 == 0 else worse[f"q{i + 1}"]
    diff = stats.paired_bootstrap(worse, base)
    assert diff.delta == pytest.approx(-0.25) and diff.hi < 0 and diff.p_value < 0.01
    assert stats.paired_bootstrap([1, 0], [1, 1]).n == 2
    with pytest.raises(ValueError):
        stats.paired_bootstrap([1, 0], [1])


def test_by_group():
    rows = [
        {"type": "a", "values": {"f1": 1.0}},
        {"type": "a", "values": {"f1": 0.0}},
        {"type": "b", "values": {"f1": 1.0}},
        {"type": "b", "values": {}},
    ]
    out = stats.by_group(rows, ["f1"], "type")
    assert out["a"]["f1"]["value"] == 0.5 and out["a"]["f1"]["n"] == 2 and out["b"]["f1"]["n"] == 1
    assert "b" not in stats.by_group(rows, ["f1"], "type", min_n=2)


# --- report --------------------------------------------------------------------------------


def _scored(correct: list[float], run_id: str = "run-1") -> dict:
    questions = [
        {
            "id": f"q{i}",
            "question": f"Question {i}?",
            "type": "inference" if i % 2 else "comparison",
            "gold": ["gold"],
            "answer": "gold" if v else "other",
            "citations": ["a.txt [0:10]"],
            "verdict": "correct" if v else "wrong",
            "values": {"match": v},
        }
        for i, v in enumerate(correct)
    ]
    questions[1]["question"] = "<script>alert('x')</script> & | pipes"
    return {
        "run": {"id": run_id, "dataset": "unit", "mode": "extractive"},
        "metrics": {
            "match": stats.summarize(correct),
            "hits_at_5_doc": {"value": 0.9, "ci": [0.8, 0.95], "n": 50},
        },
        "by_type": stats.by_group(questions, ["match"], "type"),
        "by_k": {
            "recall_chunk": {"1": 0.3, "3": 0.5, "5": 0.7},
            "recall_doc": {"1": 0.5, "3": 0.8, "5": 0.9},
        },
        "baselines": {"bm25": {"match": {"value": 0.6, "ci": [0.5, 0.7], "n": 50}}},
        "anchors": {"lead3_rouge1": {"value": 45.54, "expected": 45.54, "source": "SOURCE.md"}},
        "questions": questions,
        "latency": [0.1, 0.2, 0.25, 0.3, 1.2],
    }


class _TagChecker(HTMLParser):
    """Fails on unbalanced tags; records every tag seen."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"})

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.seen: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.seen.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.seen.add(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unexpected </{tag}>, open: {self.stack[-3:]}"
        self.stack.pop()


def test_report_files_are_written_well_formed_and_escaped(tmp_path):
    scored = _scored([1.0, 0.0, 1.0, 1.0] * 10)
    paths = report.write_report(scored, tmp_path / "out", baseline=_scored([1.0] * 40, "base"))
    assert set(paths) == {"json", "md", "html", "comparison"}
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["run"]["id"] == "run-1"
    page = paths["html"].read_text(encoding="utf-8")
    checker = _TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.stack == [] and {"svg", "table", "style"} <= checker.seen
    assert "script" not in checker.seen and "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("<svg") == 3  # by k, by type, latency
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    md = paths["md"].read_text(encoding="utf-8")
    assert "<script" not in md and "&lt;script&gt;" in md and "\\| pipes" in md
    assert "regressed" in md  # match dropped from 1.0 to 0.75 on the same questions


def test_compare_paired_and_ci_overlap():
    base = _scored([1.0] * 40, "base")
    cur = _scored([1.0, 0.0, 1.0, 1.0] * 10)
    rows = {r["metric"]: r for r in report.compare(cur, base)}
    assert rows["match"]["method"] == "paired" and rows["match"]["regressed"]
    assert rows["match"]["delta"] == pytest.approx(-0.25) and rows["match"]["ci"][1] < 0
    assert rows["hits_at_5_doc"]["method"] == "ci_overlap" and not rows["hits_at_5_doc"]["regressed"]
    low = {"run": {}, "metrics": {"hits_at_5_doc": {"value": 0.6, "ci": [0.5, 0.7], "n": 50}}}
    assert {r["metric"]: r for r in report.compare(low, base)}["hits_at_5_doc"]["regressed"]
    # lower is better: a higher value is the regression
    assert report.compare(base, low, lower_is_better={"hits_at_5_doc"})[1]["regressed"]
    assert report.compare(cur, cur)[0]["regressed"] is False


# --- gate ----------------------------------------------------------------------------------


def test_gate_floors_ceilings_and_invariants():
    scored = {
        "run": {},
        "metrics": {
            "match": {"value": 0.55},
            "unsupported_number_rate": {"value": 0.1},
            "citation_parse_rate": {"value": 1.0},
        },
    }
    thresholds = {
        "floors": {"match": 0.6, "unsupported_number_rate_max": 0.0, "abstention_f1": 0.7},
        "invariants": {"citation_parse_rate": True},
    }
    failures = gate.check(scored, thresholds)
    assert len(failures) == 3
    assert any(f.startswith("floor match: 0.5500 < 0.6000") for f in failures)
    assert any(f.startswith("ceiling unsupported_number_rate") for f in failures)
    assert any("abstention_f1: not scored" in f for f in failures)
    assert gate.check(scored, {"floors": {"match": 0.5}}) == []


def test_gate_fails_on_a_regression(tmp_path):
    path = tmp_path / "thresholds.toml"
    path.write_text(
        '[floors]\nmatch = 0.5\n\n[regression]\nmax_drop = 0.02\nmetrics = ["match"]\n', encoding="utf-8"
    )
    thresholds = gate.load_thresholds(path)
    base = _scored([1.0] * 40, "base")
    cur = _scored([1.0, 0.0, 1.0, 1.0] * 10)
    failures = gate.check(cur, thresholds, baseline=base)
    assert len(failures) == 1 and failures[0].startswith("regression match: 1.0000 -> 0.7500")
    assert gate.check(cur, thresholds, baseline=cur) == []
    loose = {**thresholds, "regression": {"max_drop": 0.3, "metrics": ["match"]}}
    assert gate.check(cur, loose, baseline=base) == []  # significant, but within the allowed drop


def test_gate_rejects_unknown_sections(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("[flors]\nmatch = 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown section"):
        gate.load_thresholds(path)
