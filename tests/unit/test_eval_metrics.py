"""Evaluation metrics: hand-computed cases, and the published anchors reproduced from ../shared."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rag.evaluation import metrics as m
from rag.types import Chunk, Hit

SHARED = Path(__file__).resolve().parents[3] / "shared"
DATASETS = SHARED / "datasets"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared dataset not available at {path} (the team's ../shared folder)")
    return path


# --- SQuAD ---------------------------------------------------------------------------------


def test_normalize_answer_is_the_official_one():
    assert m.normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert m.normalize_answer("an apple, a pear") == "apple pear"
    assert m.normalize_answer("Theory") == "theory"  # articles only as whole words


def test_em_and_f1_by_hand():
    assert m.exact_match("the Broncos.", ["Denver Broncos", "Broncos"]) == 1.0
    assert m.f1("the cat sat", ["a cat sat down"]) == pytest.approx(0.8)  # P=1, R=2/3
    assert m.f1("cat cat", ["cat"]) == pytest.approx(2 * 0.5 * 1 / 1.5)  # multiset overlap
    assert m.f1("dog", ["cat"]) == 0.0


def test_squad_v2_unanswerable_rules():
    assert m.exact_match("", []) == 1.0 and m.f1("", []) == 1.0
    assert m.exact_match("Paris", []) == 0.0 and m.f1("Paris", []) == 0.0
    assert m.f1("", ["Paris"]) == 0.0
    assert m.exact_match("", ["the"]) == 1.0  # a gold that normalises to nothing counts as no answer


def test_squad_scores_v1_counts_missing_as_zero(caplog):
    data = {
        "version": "1.1",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "c",
                        "qas": [
                            {"id": "q1", "answers": [{"text": "blue sky", "answer_start": 0}]},
                            {"id": "q2", "answers": [{"text": "red", "answer_start": 0}]},
                        ],
                    }
                ],
            }
        ],
    }
    out = m.squad_scores(data, {"q1": "the blue sky"})
    assert out["exact_match"] == 50.0 and out["f1"] == 50.0 and out["missing"] == 1
    assert "unanswered" in caplog.text


# (predictions file, dataset version, EM, F1): published dev numbers, see squad-dev/SOURCE.md
SQUAD_GOLDEN = [
    ("v1.1_logistic_regression_baseline.json", "1.1", 40.14, 50.98),
    ("v1.1_bert_ensemble.json", "1.1", 86.21, 92.20),
    ("v1.1_match_lstm_boundary_ensemble.json", "1.1", 67.63, 76.76),
    ("v2.0_bert_single.json", "2.0", 78.74, 81.78),
    ("v2.0_bidaf_selfattn_elmo_single.json", "2.0", 65.70, 67.88),
]


@pytest.fixture(scope="module")
def squad_dev():
    folder = _need(DATASETS / "squad-dev")
    return {v: json.loads((folder / f"dev-v{v}.json").read_text(encoding="utf-8")) for v in ("1.1", "2.0")}


@pytest.mark.parametrize(("name", "version", "em", "f1"), SQUAD_GOLDEN)
def test_squad_reproduces_published_dev_scores(squad_dev, name, version, em, f1):
    preds = json.loads(
        _need(DATASETS / "squad-dev" / "reference_predictions" / name).read_text(encoding="utf-8")
    )
    out = m.squad_scores(squad_dev[version], preds)
    assert (round(out["exact_match"], 2), round(out["f1"], 2)) == (em, f1)


# --- answers -------------------------------------------------------------------------------


def test_contains_gold_uses_whole_tokens():
    assert m.answer_contains_gold("It was the Denver Broncos, in 2016.", ["Denver Broncos"])
    assert not m.answer_contains_gold("That is not known.", ["no"])
    assert m.answer_contains_gold("That is not known.", ["no"], word_boundary=False)  # FlashRAG/BERGEN rule
    assert not m.answer_contains_gold("anything", [""])


def test_multihop_official_accuracy_is_any_shared_token():
    assert m.multihop_official_correct("yes", "Yes")
    assert m.multihop_official_correct("The answer is Google", "Google")
    assert not m.multihop_official_correct("Yes, it did", "Yes")  # "yes," != "yes": punctuation stays
    assert m.multihop_official_correct('The answer to the question is "Google"', "Google LLC")
    assert m.multihop_official_correct("Insufficient info", "Insufficient information.")
    # the stricter variant needs the whole gold
    assert m.multihop_contains_gold("Yes, it did", "Yes")
    assert not m.multihop_contains_gold("Insufficient info", "Insufficient information.")


def test_abstention_scores_by_hand():
    out = m.abstention_scores([True, True, False, False], [False, True, False, True])
    assert out["precision"] == 0.5 and out["recall"] == 0.5 and out["f1"] == 0.5
    assert out["false_answer_rate"] == 0.5 and out["over_abstention_rate"] == 0.5
    assert m.abstention_scores([False], [True])["f1"] == 0.0


def test_latency_and_tokens():
    lat = m.latency_summary([1.0, 2.0, 3.0, 4.0])
    assert lat["p50"] == 2.5 and lat["mean"] == 2.5 and lat["p95"] == pytest.approx(3.85)
    assert m.latency_summary([])["p50"] is None
    assert m.token_totals([{"prompt": 3, "completion": 1}, {"prompt": 2}]) == {"prompt": 5, "completion": 1}


# --- retrieval -----------------------------------------------------------------------------

RANKED = ["a", "x", "b", "y", "c"]
REL = {"a", "b", "c", "d"}


def test_retrieval_metrics_by_hand():
    assert m.hits_at_k(RANKED, REL, 1) == 1.0
    assert m.recall_at_k(RANKED, REL, 3) == 0.5
    assert m.precision_at_k(RANKED, REL, 5) == 0.6
    assert m.precision_at_k(["a"], REL, 10) == 0.1  # trec_eval divides by k
    assert m.mrr_at_k(["x", "y", "b"], {"b"}, 3) == pytest.approx(1 / 3)
    assert m.mrr_at_k(["x", "y", "b"], {"b"}, 2) == 0.0
    assert m.average_precision_at_k(RANKED, REL, 5) == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)
    assert m.all_evidence_at_k(RANKED, REL, 5) == 0.0
    assert m.all_evidence_at_k(RANKED, {"a", "b"}, 3) == 1.0
    assert m.all_evidence_at_k(RANKED, {"a", "b"}, 2) == 0.0


def test_ndcg_exact_values():
    dcg = 1 + 1 / 2 + 1 / math.log2(6)  # relevant at ranks 1, 3, 5
    idcg = 1 + 1 / math.log2(3) + 1 / 2 + 1 / math.log2(5)  # 4 relevant, k=5
    assert m.ndcg_at_k(RANKED, REL, 5) == pytest.approx(dcg / idcg)
    assert m.ndcg_at_k(RANKED, REL, 5) == pytest.approx(0.73659, abs=1e-5)
    assert m.ndcg_at_k(["x", "y", "b"], {"b"}, 3) == pytest.approx(0.5)  # ideal from |Rel| = 1, not k
    assert m.ndcg_at_k(["a", "a", "b"], {"a", "b"}, 2) == pytest.approx(
        1 / (1 + 1 / math.log2(3))
    )  # repeat = 0


def test_retrieval_needs_relevant_items():
    with pytest.raises(ValueError, match="no relevant"):
        m.recall_at_k(["a"], set(), 5)


def test_multihop_official_retrieval_rule():
    chunks = ["nothing here", "It rained in New\nYork on Monday.", "Paris and New York"]
    facts = ["rained in New York", "Paris and"]
    out = m.multihop_official_retrieval(chunks, facts)
    assert out == {
        "hits_at_10": 1.0,
        "hits_at_4": 1.0,
        "map_at_10": pytest.approx((1 / 2 + 1 / 3) / 2),
        "mrr_at_10": 0.5,
    }
    assert m.fact_in_chunk("New York", "NewYork")


def test_evidence_to_chunks_by_span_and_by_fact():
    evidence = [
        {"source": "a.txt", "start": 100, "end": 150, "text": "x"},
        {"source": "a.txt", "start": 160, "end": 170, "text": "y"},
        {"source": "b.txt", "start": None, "end": None, "text": "gold fact"},
    ]
    chunks = [
        {"source": "c.txt", "start": 0, "end": 500, "text": "other"},
        {"source": "a.txt", "start": 140, "end": 200, "text": "..."},  # covers evidence 0 and 1
        {"source": "b.txt", "start": 0, "end": 90, "text": "the gold  fact is here"},
        {"source": "a.txt", "start": 0, "end": 100, "text": "touches, no overlap"},
    ]
    assert m.evidence_relevance(chunks, evidence) == [set(), {0, 1}, {2}, set()]
    assert m.evidence_relevance(chunks, evidence, min_overlap=0.5)[1] == {1}  # 10/50 chars of evidence 0
    s = m.evidence_scores(chunks, evidence, ks=[1, 2, 3])
    assert s["hits_at_1_chunk"] == 0.0 and s["mrr_at_3_chunk"] == 0.5
    assert s["recall_at_2_chunk"] == pytest.approx(2 / 3) and s["all_evidence_at_3_chunk"] == 1.0
    # ranking ids: [nonrel, 0, 2] -> DCG = 1/log2(3) + 1/log2(4); ideal = 3 items at the top
    assert s["ndcg_at_3_chunk"] == pytest.approx((1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3) + 0.5))
    assert s["recall_at_3_doc"] == 1.0 and s["mrr_at_3_doc"] == 0.5  # docs: c, a, b


def test_evidence_accepts_pipeline_chunks_and_hits():
    chunk = Chunk(chunk_id="c1", doc_id="h", source="a.txt", index=0, start=90, end=120, text="t")
    evidence = {"source": "a.txt", "start": 100, "end": 150, "text": "x"}
    assert m.chunk_covers(chunk, evidence) and m.chunk_covers(Hit(chunk=chunk, score=1.0), evidence)


# --- citations -----------------------------------------------------------------------------

PASSAGE = "The ECB kept its deposit rate at 4% on 14 March 2024, President Christine Lagarde said."


def test_support_judge():
    assert m.support("The ECB kept the deposit rate at 4% in March.", [PASSAGE])
    assert not m.support("The ECB kept the deposit rate at 5% in March.", [PASSAGE])  # number
    assert not m.support("The Fed kept the deposit rate at 4% in March.", [PASSAGE])  # name
    assert not m.support("Lagarde announced sweeping unexpected cuts across European banking.", [PASSAGE])
    assert not m.support("The ECB kept rates.", [])
    assert m.missing_key_tokens("Rates were 2,000 in Berlin.", ["rates were 2000 in berlin"]) == []


def _stub_judge(sentence, passages):
    """Supported iff every word of the sentence is in the passages (to test ALCE's logic exactly)."""
    vocab = set(" ".join(passages).split())
    return all(w in vocab for w in sentence.split())


def test_alce_citation_recall_and_precision_by_hand():
    passages = ["alpha beta", "gamma", "delta"]
    sentences = [
        ("alpha beta", [0]),  # supported, 1 precise citation
        ("alpha gamma", [0, 1]),  # needs both: 2 precise
        ("gamma", [1, 2]),  # 2 is irrelevant (alone no, rest yes): 1 of 2 precise
        ("alpha", []),  # no citation: recall 0
        ("delta", [5]),
    ]  # out of range: recall 0, citation not counted
    out = m.alce_citation_scores(sentences, passages, judge=_stub_judge)
    assert out.recall == pytest.approx(3 / 5) and out.precision == pytest.approx(4 / 5)
    assert out.n_citations == 5 and out.sentence_supported == [True, True, True, False, False]
    one = m.alce_citation_scores([("alpha gamma", [0, 1])], passages, judge=_stub_judge, at_most_citations=1)
    assert one.recall == 0.0 and one.n_citations == 1


def test_alce_marker_parsing():
    assert m.parse_cited_ids("It rained [1][3].") == [0, 2]
    assert m.remove_citations("It rained [1][3].") == "It rained."
    assert m.sentences_with_markers(["A [2]."]) == [("A.", [1])]


def test_grounded_entities_share():
    pairs = [("Lagarde spoke on 14 March.", [PASSAGE]), ("Macron spoke.", [PASSAGE]), ("It rained.", [])]
    assert m.grounded_entities_share(pairs) == pytest.approx(2 / 3)


# --- briefs --------------------------------------------------------------------------------


def test_lead_k_and_splitter():
    text = "first one . second one! third?\nfourth"
    assert m.split_simple(text) == ["first one .", "second one!", "third?", "fourth"]
    assert m.lead_k(text, 2) == "first one . second one!"


def test_key_facts_and_recall():
    ref = (
        "Newcastle skipper Moussa Sissoko was sent off on Monday. Afterwards, Sissoko apologised. "
        "The club fined him £20,000 on April 21st."
    )
    # a capitalised word opening a sentence ("Newcastle", "Afterwards") is not taken for a name
    # unless it also appears capitalised mid-sentence
    facts = m.key_facts(ref)
    assert facts == ["Monday", "Moussa Sissoko", "Sissoko", "April 21st", "20,000"]
    brief = "Moussa Sissoko of Newcastle was sent off on Monday and fined 20,000 pounds."
    assert m.key_fact_recall(brief, facts) == pytest.approx(4 / 5)  # the date is missing
    assert m.key_fact_recall("anything", []) == 1.0
    assert m.key_facts(
        "Newcastle lost. Fans of Newcastle were angry on 3 May 2015 at St James Park, 2.5% up."
    ) == ["Newcastle", "3 May 2015", "2.5%", "St James Park"]


def test_length_compliance():
    assert m.length_compliance("one two three", max_words=5) == {"ok": True, "ratio": 0.6, "words": 3}
    assert m.length_compliance("one two three", max_words=2)["ok"] is False
    assert m.length_compliance("one", max_words=5, min_words=2)["ok"] is False


def test_rouge_by_hand():
    r = m.rouge("the cat sat", "the cat sat")
    assert r == {"rouge1": 1.0, "rouge2": 1.0, "rougeLsum": 1.0}
    assert m.rouge("cats sitting", ["dog", "the cat sits"])["rouge1"] > 0.7  # stemmed, best reference


def _rouge_corpus(name: str, k: int, ref_key: str) -> list[float]:
    path = _need(DATASETS / "news-summ-element-aware" / f"{name}_element_aware.json")
    items = json.loads(path.read_text(encoding="utf-8"))[name]
    totals = dict.fromkeys(m.ROUGE_TYPES, 0.0)
    for item in items:
        scores = m.rouge(m.lead_k(item["src"], k), item[ref_key].replace("..", "."))
        for t in totals:
            totals[t] += scores[t]
    return [round(100 * v / len(items), 2) for v in totals.values()]


@pytest.mark.parametrize(
    ("name", "k", "ref_key", "anchor"),
    [
        ("cnndm", 3, "element-aware_summary", [45.54, 21.92, 39.37]),
        ("cnndm", 3, "original_summary", [44.99, 22.11, 41.17]),
        ("xsum", 1, "element-aware_summary", [35.35, 14.78, 27.46]),
    ],
)
def test_rouge_reproduces_lead_anchors(name, k, ref_key, anchor):
    """SOURCE.md anchors (R-1 / R-2 / R-Lsum), reproduced exactly with ``split_simple``."""
    assert _rouge_corpus(name, k, ref_key) == pytest.approx(anchor, abs=0.1)
