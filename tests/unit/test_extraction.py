"""Rule-based extraction and candidate-sentence cleaning (no embedder, no LLM)."""

from __future__ import annotations

import pytest

from rag.ingest.loading import load_text
from rag.nlp.entities import extract, find_figures, find_people, unique_sentences
from rag.nlp.text import Sentence, fold
from rag.summarize.centrality import candidate_sentences, is_tokenised
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def sample_text() -> str:
    return load_text(SAMPLE.read_text(encoding="utf-8"), source=SAMPLE.name).text


def _sentence(text: str) -> Sentence:
    return Sentence(0, len(text), text)


def test_sample_people_titles_and_affiliations(sample_text):
    people = {p.fields["name"]: p.fields for p in extract([sample_text]).people}
    assert people["Sanjeev Kumar"]["title"] == "Secretary of Defence Production"
    assert people["Sanjeev Kumar"]["affiliation"] == "Indian side"
    assert people["Andrey A. Boytsov"] == {
        "name": "Andrey A. Boytsov",
        "title": "First Deputy Director",
        "affiliation": "FSMTC",
    }
    assert people["D.K. Sunil"] == {"name": "D.K. Sunil", "title": "CMD", "affiliation": "HAL"}
    dylevsky = people["Lt Gen Dylevsky Igor Nikolaevich"]
    assert dylevsky["title"].startswith("Deputy Chief of the Main Operational Directorate")
    assert set(people) == {
        "Sanjeev Kumar",
        "Andrey A. Boytsov",
        "D.K. Sunil",
        "Lt Gen Dylevsky Igor Nikolaevich",
    }


def test_sample_organisations_and_places(sample_text):
    found = extract([sample_text])
    orgs = {m.fields["name"] for m in found.organisations}
    assert {"FSMTC", "HAL", "JSC UEC-Klimov Plant", "IRIGC-M&MTC", "IDS"} <= orgs
    assert "CMD" not in orgs  # a title, not an organisation
    places = {m.fields["name"] for m in found.places}
    assert {"Moscow", "Saint Petersburg", "New Delhi"} <= places


def test_repeated_paragraph_counts_once(sample_text):
    sents = unique_sentences(sample_text)
    folded = [fold(s.text).strip(" \"'") for s in sents]
    assert sum("strategic discussions encompassed" in f for f in folded) == 1
    assert sum(p.fields["name"] == "D.K. Sunil" for p in extract([sample_text]).people) == 1


def test_no_dates_or_figures_invented_for_a_report_without_them(sample_text):
    found = extract([sample_text])
    assert found.timeline == []  # the sample report carries no date
    assert found.figures == []  # "23rd" and "5th" are ordinals, not figures


def test_timeline_sorted_and_spans_exact():
    text = (
        "The deal was signed on 12 March 2024 in Berlin. Talks began on 3 January 2024. "
        "A review is due on 5 May. The ministry approved $1.6 billion for 70,000 homes."
    )
    found = extract([text])
    assert [m.fields["date"] for m in found.timeline] == ["2024-01-03", "2024-03-12", "--05-05"]
    for m in found.timeline:
        assert m.fields["date_text"] in text[m.start : m.end]
    figures = {m.fields["value"]: m.fields["what"] for m in found.figures}
    assert figures == {"$1.6 billion": None, "70,000": "homes"}
    assert [m.fields["text"] for m in found.agreements][0].startswith("The deal was signed")


def test_title_before_name_and_initials():
    people = find_people(_sentence("Defence Minister Rajnath Singh met Dr. A. P. J. Kalam."), 0)
    assert people and people[0].fields == {
        "name": "Rajnath Singh",
        "title": "Defence Minister",
        "affiliation": None,
    }


def test_figures_skip_years_and_dates():
    figs = find_figures(_sentence("In 2023 the firm sold 43.3 tons of illegal narcotics on 4 May 2023."), 0)
    assert [(f.fields["value"], f.fields["what"]) for f in figs] == [("43.3", "tons of illegal narcotics")]


def test_candidates_drop_news_boilerplate():
    text = (
        "By . Daily Mail Reporter . PUBLISHED: . 12:01 EST, 1 May 2014 . | . "
        "UPDATED: . 12:30 EST, 1 May 2014 . "
        "A council approved the new bridge on Tuesday after years of debate. Scroll down for video "
        "Uproar: Residents gathered outside the town hall to protest. "
        "CNN's Jane Doe contributed to this report."
    )
    cands = candidate_sentences(text)
    assert [c.text for c in cands] == ["A council approved the new bridge on Tuesday after years of debate."]
    assert all(text[c.start : c.end] == c.text for c in cands)


def test_a_leading_label_is_cut_but_later_captions_are_dropped():
    text = "Moscow: The working group met on Tuesday. Handshake: The two delegations posed for photos afterwards."
    assert [c.text for c in candidate_sentences(text)] == ["The working group met on Tuesday."]


def test_candidates_of_tokenised_text_and_datelines():
    text = (
        "cairo ( cnn ) an egyptian court has sentenced 71 people to life . the church was torched by a mob ."
    )
    assert is_tokenised(text)
    cands = candidate_sentences(text)
    assert [c.text for c in cands] == [
        "an egyptian court has sentenced 71 people to life .",
        "the church was torched by a mob .",
    ]
