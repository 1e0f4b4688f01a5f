"""Evaluation data: the JSONL test-case format, and the loaders over the shared public datasets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rag.evaluation import datasets as ds
from rag.evaluation.datasets import CorpusRecord, DatasetError, TestCase
from rag.nlp.text import normalize

SHARED = Path(__file__).resolve().parents[3] / "shared"


def _need(name: str) -> Path:
    path = SHARED / "datasets" / name
    if not path.is_dir():
        pytest.skip(f"shared dataset {name} not available at {path} (the team's ../shared folder)")
    return SHARED


def test_cases_round_trip_through_jsonl(tmp_path):
    cases = [
        TestCase(
            id="q1",
            question="Who? <b>",
            answers=["Ann"],
            evidence=[{"source": "a.txt", "start": 3, "end": 9, "text": "Ann did"}],
            tags={"type": "inference"},
        ),
        TestCase(id="b1", kind="brief", document="Text.", references={"expert": "T."}, max_words=60),
    ]
    path = tmp_path / "cases.jsonl"
    assert ds.write_jsonl(path, cases) == 2
    assert ds.load_cases(path) == cases
    corpus = [CorpusRecord(source="a.txt", title="A", text="Yes Ann did.", date="2024-01-02", meta={"x": 1})]
    ds.write_jsonl(tmp_path / "corpus.jsonl", corpus)
    assert ds.load_corpus(tmp_path / "corpus.jsonl") == corpus


def test_references_may_be_a_list():
    case = TestCase.from_dict({"id": "b", "kind": "brief", "references": ["one", "two"], "key_facts": ["x"]})
    assert case.references == {"ref1": "one", "ref2": "two"} and case.key_facts == ["x"]


def test_evidence_span_defaults_to_none():
    case = TestCase.from_dict({"id": "q", "question": "?", "evidence": [{"source": "a", "text": "fact"}]})
    assert case.evidence[0]["start"] is None and ds.unresolved_evidence([case]) == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "q", "questoin": "typo"}, "unknown test-case field"),
        ({"question": "no id"}, "without an id"),
        ({"id": "q", "kind": "essay"}, "kind must be"),
        ({"id": "q", "evidence": [{"text": "no source"}]}, "need 'source'"),
    ],
)
def test_malformed_cases_are_rejected(row, message):
    with pytest.raises(DatasetError, match=message):
        TestCase.from_dict(row)


def test_bad_jsonl_and_duplicate_ids(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad.jsonl:2"):
        ds.load_cases(bad)
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "a"}\n\n{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="duplicate"):
        ds.load_cases(dup)


def test_split_is_fixed_and_about_one_fifth():
    assert ds.split_of("What happened?") == ds.split_of("What happened?")
    share = Counter(ds.split_of(f"question {i}") for i in range(5000))["dev"] / 5000
    assert 0.17 < share < 0.23


def test_missing_shared_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        ds.multihop_rag(tmp_path)


@pytest.fixture(scope="module")
def multihop_all():
    return ds.multihop_rag(_need("multihop-rag"), split="all")


def test_multihop_rag_loader(multihop_all):
    corpus, cases = multihop_all
    assert len(corpus) == 609 and len(cases) == 2556
    assert Counter(c.tags["type"] for c in cases) == {
        "comparison_query": 856,
        "inference_query": 816,
        "temporal_query": 583,
        "null_query": 301,
    }
    nulls = [c for c in cases if not c.answerable]
    assert len(nulls) == 301 and all(not c.evidence for c in nulls)
    assert ds.unresolved_evidence(cases) == 0
    by_source = ds.corpus_by_source(corpus)
    for case in cases:
        for ev in case.evidence:
            assert by_source[ev["source"]].text[ev["start"] : ev["end"]] == ev["text"]
    assert len({c.id for c in cases}) == 2556
    assert all(normalize(r.text) == r.text for r in corpus)  # stored normalised: spans survive loading
    assert corpus[0].date and len(corpus[0].date) == 10 and corpus[0].meta["outlet"]


def test_multihop_rag_split_is_deterministic_and_disjoint(multihop_all):
    _, dev = ds.multihop_rag(SHARED, split="dev")
    _, test = ds.multihop_rag(SHARED, split="test")
    assert len(dev) + len(test) == 2556 and not {c.id for c in dev} & {c.id for c in test}
    assert 0.17 < len(dev) / 2556 < 0.23
    assert [c.id for c in dev] == [c.id for c in multihop_all[1] if c.tags["split"] == "dev"]


def test_squad_loader_sample_and_spans():
    shared = _need("squad-dev")
    corpus, cases = ds.squad(shared, version="2.0", limit=60, seed=3)
    again = ds.squad(shared, version="2.0", limit=60, seed=3)[1]
    assert [c.id for c in cases] == [c.id for c in again] and len(cases) == 60
    by_source = ds.corpus_by_source(corpus)
    for case in cases:
        assert case.answerable == bool(case.answers)
        assert case.answerable == bool(case.evidence)
        for ev in case.evidence:
            assert by_source[ev["source"]].text[ev["start"] : ev["end"]] == ev["text"]
    only = ds.squad(shared, version="2.0", limit=60, seed=3, corpus_scope="paragraphs")[0]
    assert {c.tags["paragraph"] for c in cases} == {r.source for r in only}


def test_squad_loader_full_v11():
    corpus, cases = ds.squad(_need("squad-dev"), version="1.1")
    assert len(corpus) == 2067 and len(cases) == 10570 and ds.unresolved_evidence(cases) == 0


def test_element_aware_briefs():
    shared = _need("news-summ-element-aware")
    cnndm = ds.element_aware(shared, "cnndm")
    xsum = ds.element_aware(shared, "xsum")
    assert len(cnndm) == len(xsum) == 200
    first = cnndm[0]
    assert first.kind == "brief" and first.id == "cnndm-0" and first.document.startswith("Newcastle")
    assert set(first.references) == {"expert", "original"} and ".." not in first.references["original"]
    assert set(first.baselines) == {"gpt3", "gpt3_cot"}
    assert sum(c.tags["lowercased"] for c in xsum) == 200
    json.dumps(first.to_dict())  # serialisable as a JSONL row
