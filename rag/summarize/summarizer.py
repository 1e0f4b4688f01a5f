"""Briefs and structured summaries of one or more reports, in LLM or extractive mode.

``Summarizer.brief`` writes one paragraph, bottom line first, within a word limit,
every sentence cited and checked by ``rag.nlp.claims``. ``Summarizer.summary`` fills
the documented schema ``prompts/summary.schema.json``. With a chat model, the
passages are packed into the prompt up to ``settings.context_tokens`` (counted
with tiktoken); when they do not fit, a map step takes cited notes part by part
and the final call sees only the passages those notes cite (map-reduce). Every
quote the model gives is located in the report to get its span; a reply that
fails is re-asked once, and when the LLM still fails the extractive result is
shown with a notice. Without a chat model everything is extractive
(``rag.summarize.centrality`` and ``rag.nlp.entities``).
"""

from __future__ import annotations

from typing import cast

import numpy as np

from rag.adapters.tokens import lazy_token_counter
from rag.config import Settings
from rag.errors import ProviderError, RagError, SchemaError
from rag.nlp.claims import check_sentence
from rag.nlp.text import find_quote, unique_sentences, word_count
from rag.ports import ChatModel, Embedder, TokenCounter
from rag.prompts import format_passage, load_prompt, parse_citation_key
from rag.replies import FirstReplyCheck, complete_json
from rag.summarize.centrality import (
    ExtractiveParams,
    SummaryCandidate,
    brief_candidates,
    extractive_brief_text,
    rank,
    select,
)
from rag.summarize.llm_reply import Passage, brief_reply_problems, llm_summary
from rag.summarize.summary import build_extractive_summary, citation_dict
from rag.summarize.validation import validate_summary
from rag.types import Agreement, Brief, Citation, Document, Progress, SentenceCheck, Summary, SummaryCitation

__all__ = ["Summarizer", "extractive_brief_text"]

AGREE_THRESHOLD = 0.7  # cosine at which two reports' sentences make the same point
PASSAGE_WORDS = 120  # passages shown to the model are paragraphs cut to about this many words
MAX_REDUCE_ROUNDS = 3


def _no_progress(done: int, total: int, message: str) -> None:
    """Default progress callback: ignore."""


class Summarizer:
    """Briefs and structured summaries over documents (LLM when ``chat`` is given, else extractive)."""

    def __init__(
        self,
        embedder: Embedder,
        chat: ChatModel | None = None,
        token_counter: TokenCounter | None = None,
        *,
        settings: Settings,
    ) -> None:
        self.embedder = embedder
        self.chat = chat
        self.settings = settings
        self.token_counter = token_counter or lazy_token_counter(settings)
        self.params = ExtractiveParams()

    # --- public ---------------------------------------------------------------------

    def brief(
        self, docs: list[Document], *, words: int | None = None, progress: Progress | None = None
    ) -> Brief:
        """A one-paragraph brief of ``docs`` within ``words`` (default ``settings.brief_words``)."""
        docs = _checked(docs)
        limit = int(words or self.settings.brief_words)
        if limit < 1:
            raise RagError("The word limit of a brief must be at least 1.")
        progress = progress or _no_progress
        if self.chat is not None:
            try:
                return self._llm_brief(docs, limit, progress)
            except (ProviderError, SchemaError) as exc:
                brief = self._extractive_brief(docs, limit)
                brief.notice = _fallback_notice(exc, "brief")
                return brief
        progress(0, 1, "Choosing the key sentences")
        brief = self._extractive_brief(docs, limit)
        progress(1, 1, "Done")
        return brief

    def summary(self, docs: list[Document], *, progress: Progress | None = None) -> Summary:
        """The structured summary of ``docs``, validated against ``prompts/summary.schema.json``."""
        docs = _checked(docs)
        progress = progress or _no_progress
        result: Summary | None = None
        notice = None
        if self.chat is not None:
            try:
                result = self._llm_summary(docs, progress)
            except (ProviderError, SchemaError) as exc:
                notice = _fallback_notice(exc, "summary")
        ranked = self._rank(docs) if result is None or len(docs) > 1 else None
        if result is None:
            assert ranked is not None
            progress(0, 1, "Extracting people, places, dates and figures")
            cands, scores, vectors = ranked
            brief = self._select_brief(docs, cands, scores, vectors, self.settings.brief_words)
            points = [
                cands[i] for i in select(cands, scores, vectors, 2 * self.settings.brief_words, self.params)
            ]
            result = build_extractive_summary(docs, brief, points, threshold=self.settings.dedupe_threshold)
            result["notice"] = notice
            progress(1, 1, "Done")
        agreement = self._agreement(docs, *ranked) if ranked is not None else {}
        result["agreement"] = cast(Agreement, agreement or {"agree": [], "new": {}})
        validate_summary(result, {d.source: d for d in docs})
        return result

    # --- extractive -----------------------------------------------------------------

    def _rank(self, docs: list[Document]) -> tuple[list[SummaryCandidate], np.ndarray, np.ndarray]:
        return rank([d.text for d in docs], self.embedder, self.params)

    def _extractive_brief(self, docs: list[Document], limit: int) -> Brief:
        cands, scores, vectors = self._rank(docs)
        picked, how = brief_candidates(cands, scores, vectors, limit, self.params)
        if how is None and len(docs) > 1:
            picked = self._order(docs, cands, scores, picked)
        citations, checks = [], []
        for i, cand in enumerate(picked, 1):
            doc = docs[cand.doc]
            citations.append(_citation(i, doc, cand.start, cand.end))
            verdict = check_sentence(cand.text, [cand.text])
            problems = [f"trimmed at {how} to fit the word limit"] if how else []
            checks.append(
                SentenceCheck(cand.text, [i], verdict.supported, problems + verdict.problems, verdict.overlap)
            )
        text = " ".join(c.text for c in checks)
        notice = f"The key sentence was longer than the word limit; it was cut at {how}." if how else None
        agreement = self._agreement(docs, cands, scores, vectors)
        return Brief(
            text,
            checks,
            citations,
            word_count(text),
            limit,
            "extractive",
            [d.source for d in docs],
            notice,
            agreement,
        )

    def _select_brief(
        self,
        docs: list[Document],
        cands: list[SummaryCandidate],
        scores: np.ndarray,
        vectors: np.ndarray,
        limit: int,
    ) -> list[SummaryCandidate]:
        """Picked sentences: bottom line (best score) first, then by report date and position."""
        picked = [cands[i] for i in select(cands, scores, vectors, limit, self.params)] if cands else []
        return self._order(docs, cands, scores, picked)

    @staticmethod
    def _order(
        docs: list[Document],
        cands: list[SummaryCandidate],
        scores: np.ndarray,
        picked: list[SummaryCandidate],
    ) -> list[SummaryCandidate]:
        """For several reports: the best-scored sentence first, the others by report date, then position."""
        if len(docs) == 1 or not picked:
            return picked
        score_of = {(c.doc, c.start): scores[i] for i, c in enumerate(cands)}
        lead = max(picked, key=lambda c: score_of[(c.doc, c.start)])
        rest = sorted(
            (c for c in picked if c is not lead), key=lambda c: (docs[c.doc].date or "9999", c.doc, c.start)
        )
        return [lead, *rest]

    def _agreement(
        self,
        docs: list[Document],
        cands: list[SummaryCandidate],
        scores: np.ndarray,
        vectors: np.ndarray,
        per_doc: int = 5,
    ) -> dict:
        """What two or more reports say alike and what each alone adds ({} for one report)."""
        if len(docs) < 2 or not cands:
            return {}
        agree: list[dict] = []
        new: dict[str, list[dict]] = {d.source: [] for d in docs}
        seen: set[tuple[int, int]] = set()
        for d, doc in enumerate(docs):
            own = [i for i, c in enumerate(cands) if c.doc == d]
            for i in sorted(own, key=lambda i: -scores[i])[:per_doc]:
                matches = _matches(i, cands, vectors, AGREE_THRESHOLD)
                if not matches:
                    new[doc.source].append({"text": cands[i].text, "citations": [_cite(docs, cands[i])]})
                elif (cands[i].doc, cands[i].start) not in seen:
                    group = [i, *matches]
                    seen.update((cands[j].doc, cands[j].start) for j in group)
                    agree.append(
                        {
                            "text": cands[i].text,
                            "sources": [docs[cands[j].doc].source for j in group],
                            "citations": [_cite(docs, cands[j]) for j in group],
                        }
                    )
        return {"agree": agree, "new": new}

    # --- LLM ------------------------------------------------------------------------------

    def _llm_brief(self, docs: list[Document], limit: int, progress: Progress) -> Brief:
        assert self.chat is not None  # LLM mode only
        passages, notes = self._fit(self._passages(docs), "one-paragraph brief", progress)
        total = notes + 1
        progress(notes, total, "Writing the brief")
        prompt = load_prompt("brief")
        messages = prompt.render(words=limit, reports=_reports(docs), passages=_blocks(passages))
        check = FirstReplyCheck(lambda data: brief_reply_problems(data, passages, limit))
        data, _result = complete_json(
            self.chat, messages, prompt.schema or {}, schema_name="brief", validate=check
        )
        brief = self._build_llm_brief(docs, data, passages, limit)
        if len(docs) > 1:
            brief.agreement = self._agreement(docs, *self._rank(docs))
        progress(total, total, "Done")
        return brief

    def _build_llm_brief(
        self, docs: list[Document], data: dict, passages: list[Passage], limit: int
    ) -> Brief:
        """Map the reply's quotes to spans, check every sentence, drop unsupported facts, keep the limit."""
        citations: list[Citation] = []
        index: dict[tuple[int, int, int], int] = {}
        kept: list[SentenceCheck] = []
        dropped: list[SentenceCheck] = []
        for sent in data["sentences"]:
            text = str(sent["text"]).strip()
            keys, cited = [], []
            for cite in sent["citations"]:
                passage = passages[parse_citation_key(cite["key"]) - 1]  # type: ignore[operator]  # validated
                a, b = find_quote(passage.text, cite["quote"])  # type: ignore[misc]  # validated
                span = (passage.doc, passage.start + a, passage.start + b)
                if span not in index:
                    index[span] = len(citations) + 1
                    citations.append(_citation(index[span], docs[passage.doc], span[1], span[2]))
                keys.append(index[span])
                cited.append(passage.text)
            verdict = check_sentence(text, cited)
            checked = SentenceCheck(
                text, list(dict.fromkeys(keys)), verdict.supported, verdict.problems, verdict.overlap
            )
            fact_problem = any(p.startswith(("number", "date", "name")) for p in verdict.problems)
            if not fact_problem and word_count(" ".join(s.text for s in kept + [checked])) > limit:
                checked.problems.append(f"over the word limit of {limit}")
                fact_problem = True
            (dropped if fact_problem else kept).append(checked)
        if not kept:
            raise SchemaError("No sentence of the model's brief is supported by the passages it cites.")
        citations, kept = _renumber(citations, kept)
        text = " ".join(s.text for s in kept)
        notice = _dropped_notice(dropped)
        return Brief(
            text,
            kept,
            citations,
            word_count(text),
            limit,
            "llm",
            [d.source for d in docs],
            notice,
            dropped=dropped,
        )

    def _llm_summary(self, docs: list[Document], progress: Progress) -> Summary:
        assert self.chat is not None  # LLM mode only
        passages, notes = self._fit(self._passages(docs), "structured summary", progress)
        total = notes + 1
        progress(notes, total, "Writing the structured summary")
        result = llm_summary(self.chat, docs, passages, _reports(docs), _blocks(passages))
        progress(total, total, "Done")
        return result

    def _passages(self, docs: list[Document]) -> list[Passage]:
        """Paragraph passages of every report, repeats dropped, long paragraphs cut at sentences."""
        out: list[Passage] = []
        for d, doc in enumerate(docs):
            group: list = []
            for sent in unique_sentences(doc.text, threshold=self.settings.dedupe_threshold):
                para_break = group and "\n\n" in doc.text[group[-1].end : sent.start]
                if group and (para_break or word_count(" ".join(s.text for s in group)) >= PASSAGE_WORDS):
                    out.append(_passage(d, doc, group))
                    group = []
                group.append(sent)
            if group:
                out.append(_passage(d, doc, group))
        return out

    def _fit(self, passages: list[Passage], goal: str, progress: Progress) -> tuple[list[Passage], int]:
        """Passages that fit the context budget, map-reducing when they do not; and the map calls made."""
        budget = self.settings.context_tokens
        calls = 0
        for _round in range(MAX_REDUCE_ROUNDS):
            sizes = [self.token_counter.count(format_passage(1, p.text, source=p.source)) for p in passages]
            if sum(sizes) <= budget or len(passages) <= 1:
                return passages, calls
            groups = _groups(sizes, budget)
            kept: list[Passage] = []
            for g, idx in enumerate(groups, 1):
                progress(calls, calls + len(groups) - g + 2, f"Reading part {g} of {len(groups)}")
                kept += self._map(goal, [passages[i] for i in idx], g, len(groups))
                calls += 1
            passages = list(dict.fromkeys(kept)) if kept else passages[:1]
        n = self.token_counter.pack([format_passage(1, p.text, source=p.source) for p in passages], budget)
        return passages[: max(1, n)], calls

    def _map(self, goal: str, group: list[Passage], part: int, parts: int) -> list[Passage]:
        """One map call: cited notes on a part; returns the passages the notes cite, in note order."""
        assert self.chat is not None  # LLM mode only
        prompt = load_prompt("map")
        schema = load_prompt("brief").schema or {}
        messages = prompt.render(goal=goal, max_notes=8, part=part, parts=parts, passages=_blocks(group))
        check = FirstReplyCheck(lambda data: brief_reply_problems(data, group, None))
        data, _ = complete_json(self.chat, messages, schema, schema_name="notes", validate=check)
        keys = [parse_citation_key(c["key"]) or 0 for s in data["sentences"] for c in s["citations"]]
        cited = [group[n - 1] for n in keys]  # keys were validated by the check
        return list(dict.fromkeys(cited))


# --- helpers --------------------------------------------------------------------------------


def _checked(docs: list[Document]) -> list[Document]:
    if not docs:
        raise RagError(
            "No reports to summarise.", hint="Pick one or more reports, or a date range that has some."
        )
    if not any(d.text.strip() for d in docs):
        raise RagError("The chosen reports have no text to summarise.")
    return sorted(docs, key=lambda d: d.date or "9999")  # oldest first, undated last: events in date order


def _fallback_notice(exc: RagError, what: str) -> str:
    reason = exc.message.rstrip(". ")
    if isinstance(exc, SchemaError):
        return f"The LLM's {what} could not be verified ({reason}); showing the extractive {what} instead."
    return f"The LLM failed ({reason}); showing the extractive {what} instead."


def _dropped_notice(dropped: list[SentenceCheck]) -> str | None:
    if not dropped:
        return None
    reasons = "; ".join(p for s in dropped for p in s.problems[:1])
    n = len(dropped)
    return f"Left out {n} sentence{'s' * (n != 1)} of the model's brief ({reasons})."


def _citation(key: int, doc: Document, start: int, end: int) -> Citation:
    return Citation(
        key,
        doc.source,
        doc.doc_id,
        "",
        start,
        end,
        doc.text[start:end],
        doc.title,
        doc.date,
        page=doc.page_at(start),
        publisher=doc.publisher,
    )


def _cite(docs: list[Document], cand: SummaryCandidate) -> SummaryCitation:
    return citation_dict(docs[cand.doc], cand.start, cand.end)


def _renumber(
    citations: list[Citation], kept: list[SentenceCheck]
) -> tuple[list[Citation], list[SentenceCheck]]:
    """Keep only citations that kept sentences use, numbered 1..n in order of use."""
    order = list(dict.fromkeys(k for s in kept for k in s.citations))
    new_key = {old: i for i, old in enumerate(order, 1)}
    by_key = {c.key: c for c in citations}
    out = []
    for old in order:
        c = by_key[old]
        out.append(
            Citation(
                new_key[old],
                c.source,
                c.doc_id,
                c.chunk_id,
                c.start,
                c.end,
                c.quote,
                c.title,
                c.date,
                page=c.page,
                publisher=c.publisher,
            )
        )
    for s in kept:
        s.citations = [new_key[k] for k in s.citations]
    return out, kept


def _matches(i: int, cands: list[SummaryCandidate], vectors: np.ndarray, threshold: float) -> list[int]:
    """For each other report, its sentence most like candidate ``i`` when similar enough."""
    sims = vectors @ vectors[i]
    best: dict[int, int] = {}
    for j, c in enumerate(cands):
        if (
            c.doc != cands[i].doc
            and sims[j] >= threshold
            and (c.doc not in best or sims[j] > sims[best[c.doc]])
        ):
            best[c.doc] = j
    return [best[d] for d in sorted(best)]


def _passage(d: int, doc: Document, sents: list) -> Passage:
    start, end = sents[0].start, sents[-1].end
    return Passage(d, doc.source, start, end, doc.text[start:end], doc.date)


def _blocks(passages: list[Passage]) -> str:
    return "\n\n".join(
        format_passage(i, p.text, source=p.source, date=p.date) for i, p in enumerate(passages, 1)
    )


def _reports(docs: list[Document]) -> str:
    return "; ".join(f"{d.source}" + (f" ({d.date})" if d.date else "") for d in docs)


def _groups(sizes: list[int], budget: int) -> list[list[int]]:
    """Consecutive passage indices packed into groups of at most ``budget`` tokens (one or more each)."""
    groups: list[list[int]] = [[]]
    used = 0
    for i, size in enumerate(sizes):
        if groups[-1] and used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += size
    return groups
