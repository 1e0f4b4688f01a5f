"""Briefs and structured summaries: real embedder, real claim checker, LLM mode against the fake server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag.adapters.openai_chat import build_chat_model
from rag.config import Settings
from rag.ingest.loading import load_text
from rag.nlp.text import fold, word_count
from rag.present import brief_markdown, summary_to_markdown
from rag.schema import validate_schema
from rag.summarize.schema import load_summary_schema, reply_schema
from rag.summarize.summarizer import Summarizer, extractive_brief_text
from rag.summarize.validation import summary_problems
from rag.types import Brief, Document
from tests.conftest import SAMPLE, SHARED
from tests.fake_openai import error

CORPUS = SHARED / "datasets" / "multihop-rag" / "corpus.json"
PASSAGE = re.compile(r'<passage key="(S\d+)"[^>]*>\n(.*?)\n</passage>', re.S)

REPORT_A = (
    "Acme Corp agreed to buy Beta Industries for $2.1 billion on 12 March 2024. "
    "The deal was approved by both boards after two months of talks.\n\n"
    "Acme said the purchase would double its factory capacity in Ohio. "
    "Analysts expect the merger to close by the end of the year."
)
REPORT_B = (
    "Beta Industries will be bought by Acme Corp in a $2.1 billion deal announced on 12 March 2024. "
    "Regulators in Brussels must still review the merger.\n\n"
    "Beta's founder, Jane Doe, Chief Executive of Beta Industries, will leave the company after the sale."
)


@pytest.fixture(scope="module")
def sample() -> Document:
    return load_text(SAMPLE.read_text(encoding="utf-8"), source=SAMPLE.name)


@pytest.fixture(scope="module")
def two_reports() -> list[Document]:
    return [
        load_text(REPORT_A, source="a.txt", date="2024-03-12"),
        load_text(REPORT_B, source="b.txt", date="2024-03-13"),
    ]


def _docs(docs: list[Document]) -> dict[str, Document]:
    return {d.source: d for d in docs}


def _assert_brief_cited(brief: Brief, docs: list[Document], limit: int) -> None:
    by_source = _docs(docs)
    assert brief.word_count == word_count(brief.text) <= limit
    assert brief.sentences and all(s.citations for s in brief.sentences)
    assert [c.key for c in brief.citations] == list(range(1, len(brief.citations) + 1))
    for c in brief.citations:
        assert by_source[c.source].text[c.start : c.end] == c.quote
    assert all(s.supported for s in brief.sentences), [s.problems for s in brief.sentences]
    json.dumps(brief.to_dict())


def _assert_summary_valid(summary: dict, docs: list[Document]) -> None:
    assert summary_problems(summary, _docs(docs)) == []


# --- extractive -------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [25, 60, 120])
def test_extractive_brief_limits_and_citations(embedder, settings, sample, limit):
    brief = Summarizer(embedder, settings=settings).brief([sample], words=limit)
    assert brief.mode == "extractive" and brief.notice is None and brief.agreement == {}
    _assert_brief_cited(brief, [sample], limit)
    assert brief.sentences[0].text.startswith("The 23rd meeting session")  # bottom line first
    quotes = [fold(c.quote).strip(" \"'") for c in brief.citations]
    assert len(quotes) == len(set(quotes))  # the paragraph quoted twice is used at most once
    assert "[1]" in brief_markdown(brief)


def test_extractive_brief_trims_an_overlong_first_sentence(embedder, settings, sample):
    brief = Summarizer(embedder, settings=settings).brief([sample], words=12)
    assert brief.word_count <= 12 and len(brief.sentences) == 1
    assert "trimmed" in brief.sentences[0].problems[0] and brief.notice
    c = brief.citations[0]
    assert sample.text[c.start : c.end] == c.quote == brief.text


def test_extractive_summary_of_the_sample(embedder, settings, sample):
    summary = Summarizer(embedder, settings=settings).summary([sample])
    _assert_summary_valid(summary, [sample])
    assert summary["mode"] == "extractive" and summary["notice"] is None
    people = {p["name"]: p for p in summary["people"]}
    assert people["D.K. Sunil"]["title"] == "CMD" and people["D.K. Sunil"]["affiliation"] == "HAL"
    assert people["Andrey A. Boytsov"]["affiliation"] == "FSMTC"
    assert len(people) == 4 and len(people["D.K. Sunil"]["citations"]) == 1  # repeated paragraph counted once
    unfilled = {u["field"] for u in summary["unfilled"]}
    assert summary["timeline"] == [] and "timeline" in unfilled  # no date in the report: none invented
    assert summary["figures"] == [] and "open_questions" in unfilled
    texts = [fold(k["text"]).strip(" \"'") for k in summary["key_points"]]
    assert len(texts) == len(set(texts))
    md = summary_to_markdown(summary)
    assert "**D.K. Sunil**, CMD, HAL" in md and "## Not filled" in md


def test_schema_is_documented_and_the_reply_form_is_strict():
    schema = load_summary_schema()
    assert schema["description"] and all(v.get("description") for v in schema["properties"].values())
    reply = reply_schema(schema)
    assert "mode" not in reply["properties"] and "sources" not in reply["properties"]
    cite = reply["properties"]["people"]["items"]["properties"]["citations"]["items"]
    assert cite["required"] == ["key", "quote"]
    from rag.schema import strict_problems

    assert strict_problems(reply) == []


def test_multi_report_agreement_and_new(embedder, settings, two_reports):
    summarizer = Summarizer(embedder, settings=settings)
    brief = summarizer.brief(two_reports, words=80)
    _assert_brief_cited(brief, two_reports, 80)
    assert brief.sources == ["a.txt", "b.txt"]
    agree = brief.agreement["agree"]
    assert any(set(a["sources"]) == {"a.txt", "b.txt"} and "2.1 billion" in a["text"] for a in agree)
    new_b = [p["text"] for p in brief.agreement["new"]["b.txt"]]
    assert any("Brussels" in t or "Jane Doe" in t for t in new_b)
    summary = summarizer.summary(two_reports)
    _assert_summary_valid(summary, two_reports)
    assert summary["agreement"]["agree"] and [t["date"] for t in summary["timeline"]] == sorted(
        t["date"] for t in summary["timeline"]
    )
    assert "Where the reports agree" in summary_to_markdown(summary)


def test_extractive_brief_text_for_the_eval_harness(embedder):
    text = (
        "cairo ( cnn ) an egyptian court has sentenced 71 people to life in prison . the church was torched ."
    )
    out = extractive_brief_text(text, embedder, max_words=20)
    assert out.startswith("an egyptian court") and word_count(out) <= 20


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def _in_order(fragment: str, source: str) -> bool:
    """Every token of ``fragment`` occurs in ``source``, in the same order (a subsequence)."""
    rest = iter(_tokens(source))
    return all(tok in rest for tok in _tokens(fragment))


def test_compression_cuts_attributions_and_never_invents_words():
    from rag.summarize.centrality import compress_sentence, leading_fragment

    cases = {
        "however , the bridge was closed on friday , police said .": "the bridge was closed on friday .",
        "police said the attackers entered the property at about 20:15 on friday .": (
            "the attackers entered the property at about 20:15 on friday ."
        ),
        "29 june 2015 last updated at 11:41 bst mr richards , 19 , from wednesbury , was among 38 killed .": (
            "mr richards , 19 , from wednesbury , was among 38 killed ."
        ),
        "the blaze started 1,100 m -lrb- 3,600 ft -rrb- under the sea bed .": (
            "the blaze started 1,100 m under the sea bed ."
        ),
        "The mine (in Yorkshire) closed in June, the company said.": "The mine closed in June .",
        "glen johnson said he was stepping down .": "glen johnson said he was stepping down .",  # named: kept
        "police said so .": "police said so .",  # too little left: kept whole
    }
    for text, want in cases.items():
        got = compress_sentence(text)
        assert got == want and _in_order(got, text) and word_count(got) <= word_count(text)
    text = "a 58-year-old passenger , who was in the peugeot , is in a serious but stable condition ."
    assert leading_fragment(text, 30) == text
    assert leading_fragment(text, 8) == "a 58-year-old passenger , who was in the peugeot"
    assert leading_fragment(text, 2) == "a 58-year-old"
    for limit in range(1, 20):
        frag = leading_fragment(text, limit)
        assert word_count(frag) <= limit and _in_order(frag, text) and text.startswith(frag)


@pytest.mark.parametrize("max_words", [5, 12, 20, 40])
def test_compressed_brief_keeps_source_words_in_order_within_the_budget(embedder, max_words):
    text = (
        "however , a southbound van collided with a car on the a702 near biggar at 17:35 on thursday , "
        "police said . a 58-year-old male passenger in the car is in a serious but stable condition . "
        "the road was closed for six hours -lrb- until midnight -rrb- while officers examined the scene . "
        "police scotland said inquiries into the crash are continuing and appealed for witnesses ."
    )
    out = extractive_brief_text(text, embedder, max_words=max_words)
    assert out and word_count(out) <= max_words
    for line in out.splitlines():
        assert _in_order(line, text)
    assert "police said" not in out and "-lrb-" not in out


# --- LLM mode -----------------------------------------------------------------------------


def _chat(fake_openai, **overrides):
    settings = Settings(
        openai_api_key="test-key", openai_base_url=fake_openai.base_url, llm_max_retries=0, **overrides
    )
    return build_chat_model(settings), settings


def _passages(request: dict) -> dict[str, str]:
    text = "\n".join(str(m.get("content")) for m in request["messages"] if m["role"] == "user")
    return dict(PASSAGE.findall(text))


def _first_words(text: str, n: int = 8) -> str:
    return " ".join(text.split()[:n])


def _kind(request: dict) -> str:
    system = request["messages"][0]["content"]
    return (
        "map"
        if system.startswith("You take notes")
        else "summary"
        if "structured summaries" in system
        else "brief"
    )


def _brief_reply(request: dict, invent: bool = False) -> dict:
    passages = _passages(request)
    sentences = []
    for key, text in list(passages.items())[:2]:
        sentences.append(
            {"text": _first_words(text, 12), "citations": [{"key": key, "quote": _first_words(text)}]}
        )
    if invent:
        key, text = next(iter(passages.items()))
        sentences.append(
            {
                "text": "42 officials from Sanjeev Kumar's team attended the meeting.",
                "citations": [{"key": key, "quote": _first_words(text)}],
            }
        )
    return {"sentences": sentences}


def _summary_reply(request: dict) -> dict:
    passages = _passages(request)
    key_of = {k: t for k, t in passages.items()}
    who = next(k for k, t in key_of.items() if "D.K. Sunil" in t)
    first = next(iter(key_of))

    def cite(key: str, quote: str) -> list[dict]:
        return [{"key": key, "quote": quote}]

    return {
        "title": "India-Russia working group meets in Moscow",
        "bottom_line": {
            "text": "The 23rd meeting session of the Working Group took place in Moscow.",
            "citations": cite(first, "took place in Moscow"),
        },
        "key_points": [
            {"text": "The meeting took place in Moscow.", "citations": cite(first, "took place in Moscow")}
        ],
        "people": [
            {
                "name": "D.K. Sunil",
                "title": "CMD",
                "affiliation": "HAL",
                "citations": cite(who, "D.K. Sunil, CMD (HAL)"),
            },
            {
                "name": "D.K. Sunil",
                "title": "CMD",
                "affiliation": "HAL",
                "citations": cite(who, "D.K. Sunil"),
            },
        ],
        "organisations": [{"name": "HAL", "citations": cite(who, "CMD (HAL)")}],
        "places": [{"name": "Moscow", "citations": cite(first, "Moscow")}],
        "timeline": [],
        "agreements": [],
        "figures": [],
        "open_questions": [{"question": "When will the next meeting take place?", "citations": []}],
    }


def test_llm_brief_cites_exact_spans(fake_openai, embedder, sample):
    chat, settings = _chat(fake_openai)
    fake_openai.responder = _brief_reply
    brief = Summarizer(embedder, chat, settings=settings).brief([sample], words=60)
    assert brief.mode == "llm" and brief.notice is None
    _assert_brief_cited(brief, [sample], 60)
    assert len(fake_openai.chat_requests()) == 1


def test_llm_brief_invented_figure_is_flagged_and_left_out(fake_openai, embedder, sample):
    chat, settings = _chat(fake_openai)
    fake_openai.responder = lambda req: _brief_reply(req, invent=True)
    brief = Summarizer(embedder, chat, settings=settings).brief([sample], words=80)
    assert len(fake_openai.chat_requests()) == 2  # re-asked once about the unsupported claim
    reask = fake_openai.chat_requests()[1].json["messages"][-1]["content"]
    assert 'number "42" is not in the cited passages' in reask
    assert "42" not in brief.text and brief.dropped and not brief.dropped[0].supported
    assert any('"42"' in p for p in brief.dropped[0].problems) and "Left out 1 sentence" in brief.notice
    _assert_brief_cited(brief, [sample], 80)


def test_llm_failure_falls_back_to_extractive_with_notice(fake_openai, embedder, sample):
    chat, settings = _chat(fake_openai)
    fake_openai.default = error(500)
    brief = Summarizer(embedder, chat, settings=settings).brief([sample], words=60)
    assert brief.mode == "extractive" and brief.notice.startswith("The LLM failed")
    _assert_brief_cited(brief, [sample], 60)
    fake_openai.default, fake_openai.responder = None, lambda req: {"sentences": []}  # invalid twice
    summary = Summarizer(embedder, chat, settings=settings).summary([sample])
    assert summary["mode"] == "extractive" and "could not be verified" in summary["notice"]


def test_llm_summary_validated(fake_openai, embedder, sample):
    chat, settings = _chat(fake_openai)
    fake_openai.responder = _summary_reply
    summary = Summarizer(embedder, chat, settings=settings).summary([sample])
    _assert_summary_valid(summary, [sample])
    assert (
        summary["mode"] == "llm" and summary["people"][0]["citations"][0]["quote"] == "D.K. Sunil, CMD (HAL)"
    )
    assert len(summary["people"]) == 1  # listed twice by the model, counted once
    assert {u["field"] for u in summary["unfilled"]} == {"timeline", "agreements", "figures"}
    assert validate_schema(summary, load_summary_schema()) == []
    assert len(fake_openai.chat_requests()) == 1
    # the model's passages: the paragraph quoted twice in the report is shown once
    shown = _passages(fake_openai.chat_requests()[0].json)
    assert sum("Strategic discussions encompassed" in t for t in shown.values()) == 1


def _long_report() -> Document:
    if not CORPUS.is_file():
        pytest.skip("multihop-rag corpus not available")
    bodies = [b["body"] for b in json.loads(CORPUS.read_text(encoding="utf-8"))[:40] if len(b["body"]) > 3000]
    paragraphs = []
    for body in bodies[:6]:
        sentences = re.split(r"(?<=[.!?])\s+", body[:2500])
        paragraphs += [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences) - 1, 4)]
    return load_text("\n\n".join(paragraphs), source="long.txt", title="Long report")


def test_long_report_goes_through_map_reduce(fake_openai, embedder):
    doc = _long_report()
    chat, settings = _chat(fake_openai, context_tokens=900)
    fake_openai.responder = _brief_reply
    calls: list[tuple[int, int, str]] = []
    brief = Summarizer(embedder, chat, settings=settings).brief(
        [doc], words=80, progress=lambda *a: calls.append(a)
    )
    kinds = [_kind(r.json) for r in fake_openai.chat_requests()]
    assert kinds.count("map") > 1 and kinds[-1] == "brief"
    assert any("Reading part" in m for _, _, m in calls) and calls[-1][0] == calls[-1][1]
    assert all(0 <= done <= total for done, total, _ in calls)
    _assert_brief_cited(brief, [doc], 80)
    final_prompt = fake_openai.chat_requests()[-1].json["messages"][1]["content"]
    from rag.adapters.tokens import TokenCounter

    passages_text = "\n\n".join(
        f'<passage key="{k}">\n{t}\n</passage>' for k, t in PASSAGE.findall(final_prompt)
    )
    assert TokenCounter(settings.llm_model).count(passages_text) <= 900 + 50


def test_prompt_files_exist():
    root = Path(__file__).resolve().parents[2] / "prompts"
    for name in ("brief.md", "brief.schema.json", "summary.md", "summary.schema.json", "map.md"):
        assert (root / name).is_file()
