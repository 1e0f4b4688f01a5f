"""Answering: rewrite a follow-up, retrieve, answer (LLM or extractive), check every claim.

``Answerer.ask`` is what ``Pipeline.ask`` delegates to. With no LLM configured the
answer is extractive (``rag.answer.extractive``). With one, the retrieved passages are
packed into the ``answer`` prompt up to ``settings.context_tokens``, the model
replies with JSON sentences citing passage keys and exact quotes, and every
citation is validated: the key must be one of the passages and the quote must
occur in it, so the citation span is a real span of the stored report. A reply
that fails is re-asked once; after that (or when the provider fails) the
extractive answer is shown with a notice saying why.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from rag.adapters.tokens import lazy_token_counter
from rag.answer.extractive import ExtractiveAnswerer, abstain_text, check, citation_for
from rag.answer.followups import Rewrite, rewrite
from rag.config import Settings
from rag.errors import ProviderError, RagError, SchemaError
from rag.nlp.claims import check_sentence
from rag.nlp.text import find_quote
from rag.ports import ChatModel, Embedder, TokenCounter
from rag.prompts import ABSTAIN, format_passage, load_prompt, parse_citation_key, prompt_fingerprint
from rag.replies import (
    FirstReplyCheck,
    check_json_reply,
    citation_problems,
    complete_json,
    key_range,
    reask_once,
)
from rag.retrieve.retriever import Retriever
from rag.types import Answer, ChatResult, Citation, Filters, Hit, SentenceCheck

Event = tuple[str, Any]  # ("status", str) | ("delta", str) | ("answer", Answer)


@dataclass
class Context:
    """One question on its way through the stages."""

    question: str
    standalone: Rewrite
    filters: Filters
    hits: list[Hit] = field(default_factory=list)
    searched: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


class Answerer:
    """Answers questions over one retriever, in extractive or LLM mode."""

    def __init__(
        self,
        retriever: Retriever,
        embedder: Embedder,
        settings: Settings,
        *,
        chat: ChatModel | None = None,
        token_counter: TokenCounter | None = None,
    ) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self.settings = settings
        self.chat = chat
        self.token_counter = token_counter or lazy_token_counter(settings)
        self.extractive = ExtractiveAnswerer(embedder, settings)
        self._fingerprint: str | None = None

    @property
    def mode(self) -> str:
        """'llm' when a chat model is configured, else 'extractive'."""
        return "llm" if self.chat is not None else "extractive"

    @property
    def fingerprint(self) -> str:
        """Settings plus prompt files: what shaped an answer."""
        if self._fingerprint is None:
            self._fingerprint = self.settings.fingerprint(
                {"prompts": prompt_fingerprint(), "mode": self.mode}
            )
        return self._fingerprint

    def ask(
        self,
        question: str,
        *,
        history: list[dict] | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
    ) -> Answer:
        """A cited answer, or an abstention that says what was searched."""
        ctx = self._prepare(question, history, top_k, filters)
        if self.chat is None:
            return self._finish(self._extractive(ctx), ctx)
        answer = None
        for kind, value in self._llm(ctx, stream=False):
            if kind == "answer":
                answer = value
        assert answer is not None  # _llm always ends with an answer
        return self._finish(answer, ctx)

    def ask_stream(
        self,
        question: str,
        *,
        history: list[dict] | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
    ) -> Iterator[Event]:
        """Status lines and answer text as they come, then ("answer", Answer).

        Deltas are the model's first draft as it streams; the final Answer is the
        checked one (it may differ: re-asked, or the extractive fallback) and replaces it.
        """
        if self.chat is None:
            yield "answer", self.ask(question, history=history, top_k=top_k, filters=filters)
            return
        yield "status", "Searching the reports\u2026"
        ctx = self._prepare(question, history, top_k, filters)
        for kind, value in self._llm(ctx, stream=True):
            yield kind, (self._finish(value, ctx) if kind == "answer" else value)

    # --- shared stages -----------------------------------------------------------------

    def _prepare(
        self, question: str, history: list[dict] | None, top_k: int | None, filters: Filters | None
    ) -> Context:
        """Rewrite a follow-up, then retrieve."""
        if not question or not question.strip():
            raise RagError("The question is empty.", hint="Type a question about your reports.")
        t0 = time.perf_counter()
        ctx = Context(
            question.strip(), rewrite(question.strip(), history, self.chat), filters or Filters(), started=t0
        )
        if ctx.standalone.note:
            ctx.notices.append(ctx.standalone.note[0].upper() + ctx.standalone.note[1:] + ".")
        ctx.timings["rewrite"] = round(time.perf_counter() - t0, 4)
        t1 = time.perf_counter()
        ctx.hits = self.retriever.search(ctx.standalone.question, top_k=top_k, filters=ctx.filters)
        ctx.timings["retrieve"] = round(time.perf_counter() - t1, 4)
        ctx.searched = self._searched(ctx.hits, ctx.filters)
        return ctx

    def _searched(self, hits: list[Hit], filters: Filters) -> str:
        """What was searched, e.g. "6 passages from 3 of 5 reports (all reports)"."""
        total = self.retriever.snapshot().sources
        if total == 0:
            return "an empty library (no reports have been ingested)"
        sources = len({h.chunk.source for h in hits})
        if not hits:
            return f"{total} report{'s' * (total != 1)} ({filters.describe()}), and no passage matched"
        return (
            f"{len(hits)} passage{'s' * (len(hits) != 1)} from {sources} of {total} "
            f"report{'s' * (total != 1)} ({filters.describe()})"
        )

    def _extractive(self, ctx: Context) -> Answer:
        """The extractive answer to the (standalone) question from the retrieved passages."""
        return self.extractive.answer(ctx.standalone.question, ctx.hits, searched=ctx.searched)

    def _finish(self, answer: Answer, ctx: Context) -> Answer:
        """Fill in what every answer carries; make sure the API key appears nowhere."""
        answer.question = ctx.question
        answer.standalone_question = ctx.standalone.question if ctx.standalone.method != "none" else None
        notices = ctx.notices + ([answer.notice] if answer.notice else [])
        answer.notice = " ".join(dict.fromkeys(notices)) or None
        answer.searched = ctx.searched
        answer.timings = {
            **ctx.timings,
            **answer.timings,
            "total": round(time.perf_counter() - ctx.started, 4),
        }
        answer.fingerprint = self.fingerprint
        return redact(answer, self.settings.openai_api_key)

    # --- LLM mode ------------------------------------------------------------------------

    def _llm(self, ctx: Context, *, stream: bool) -> Iterator[Event]:
        """The LLM answer (validated), or the extractive one with a notice when it cannot be had."""
        if not ctx.hits:
            text = abstain_text(ctx.searched, "nothing matched the question")
            yield "answer", Answer(ctx.question, text, True, "llm", passages=ctx.hits)
            return
        assert self.chat is not None  # LLM mode only
        t0 = time.perf_counter()
        packed, messages, usage = self._pack(ctx)
        validator = FirstReplyCheck(lambda data: reply_problems(data, packed))
        prompt = load_prompt("answer")
        try:
            if stream:
                yield "status", "Asking the model\u2026"
                data, result = yield from self._stream_json(messages, prompt.schema or {}, validator)
            else:
                data, result = complete_json(
                    self.chat, messages, prompt.schema or {}, schema_name="answer", validate=validator
                )
        except (ProviderError, SchemaError) as exc:
            yield "answer", self._fallback(ctx, exc)
            return
        answer = build_llm_answer(ctx.question, data, packed, ctx.hits, ctx.searched)
        answer.usage = {**usage, **result.usage}
        answer.timings["llm"] = round(time.perf_counter() - t0, 4)
        yield "answer", answer

    def _pack(self, ctx: Context) -> tuple[list[Hit], list[dict], dict[str, int]]:
        """The passages that fit ``context_tokens``, the rendered prompt, and the counts."""
        counter = self.token_counter
        blocks = [
            format_passage(i, h.chunk.text, source=h.chunk.source, date=h.chunk.date)
            for i, h in enumerate(ctx.hits, 1)
        ]
        n = max(1, counter.pack(blocks, self.settings.context_tokens, overhead=1))
        if not counter.exact:
            ctx.notices.append(f"Token counts are estimates: {counter.note}.")
        messages = load_prompt("answer").render(
            question=ctx.standalone.question, passages="\n\n".join(blocks[:n])
        )
        usage = {
            "context_tokens": sum(counter.count(b) for b in blocks[:n]),
            "passages_packed": n,
            "prompt_tokens_counted": counter.count_messages(messages),
        }
        return ctx.hits[:n], messages, usage

    def _stream_json(
        self, messages: list[dict], schema: dict, validator: FirstReplyCheck
    ) -> Generator[Event, None, tuple[dict, ChatResult]]:
        """Stream the first reply (yielding its sentences as they grow); re-ask once without streaming."""
        assert self.chat is not None
        parts: list[str] = []
        shown = ""
        for delta in self.chat.stream(messages):
            parts.append(delta)
            text = partial_answer_text("".join(parts))
            if text.startswith(shown) and len(text) > len(shown):
                yield "delta", text[len(shown) :]
                shown = text
        first = ChatResult(
            "".join(parts), dict(self.chat.last_usage or {}), self.chat.name, self.chat.last_finish_reason
        )
        data, problems = check_json_reply(first, schema, validator)
        if not problems:
            return data, first
        yield "status", "The answer did not check out; asking the model again\u2026"
        return reask_once(
            self.chat, messages, schema, first, problems, schema_name="answer", validate=validator
        )

    def _fallback(self, ctx: Context, exc: RagError) -> Answer:
        """The extractive answer with a notice naming why the LLM answer is not shown."""
        if not self.settings.llm_extractive_fallback:
            raise exc
        reason = exc.message.rstrip(". ")
        if isinstance(exc, SchemaError):
            notice = (
                f"The LLM's answer could not be verified ({reason}); showing the extractive answer instead."
            )
        else:
            notice = f"The LLM failed ({reason}); showing the extractive answer instead."
        answer = self._extractive(ctx)
        answer.notice = notice
        return answer


def reply_problems(data: dict, packed: list[Hit]) -> tuple[list[str], list[str]]:
    """(citation problems, unsupported-claim problems) of a schema-valid answer reply."""
    hard: list[str] = []
    soft: list[str] = []
    texts = [h.chunk.text for h in packed]
    sentences = data.get("sentences") or []
    if not sentences:
        hard.append('"sentences" is empty: give at least one sentence')
    for i, sent in enumerate(sentences, 1):
        text = str(sent.get("text") or "").strip()
        if not text:
            hard.append(f"sentence {i} is empty")
            continue
        if text.startswith(ABSTAIN):
            continue
        if not sent.get("citations"):
            hard.append(
                f"sentence {i} cites no passage; cite one of {key_range(len(packed))} with an exact quote"
            )
            continue
        found, problems = citation_problems(sent["citations"], texts, f"sentence {i}")
        hard += problems
        # Every cited passage counts for the claim check, even one whose quote failed.
        cited = [texts[n - 1] for c in sent["citations"] if (n := _key(c, len(texts))) is not None]
        verdict = check_sentence(text, cited) if cited else None
        if verdict is not None and not verdict.supported:
            soft.append(
                f"sentence {i} is not supported by the passages it cites: {'; '.join(verdict.problems)}"
            )
    return hard, soft


def _key(cite: dict, n: int) -> int | None:
    """The passage number a citation names, when it is one of ``n`` passages."""
    k = parse_citation_key(str(cite.get("key", "")))
    return k if k is not None and 1 <= k <= n else None


def build_llm_answer(question: str, data: dict, packed: list[Hit], hits: list[Hit], searched: str) -> Answer:
    """The Answer for a validated reply: citations mapped to exact document spans, claims checked."""
    citations: list[Citation] = []
    index: dict[tuple[str, int, int], int] = {}
    checks: list[SentenceCheck] = []
    for sent in data["sentences"]:
        text = str(sent["text"]).strip()
        if text.startswith(ABSTAIN):
            checks.append(SentenceCheck(text, [], True, [], 1.0))
            continue
        keys: list[int] = []
        passages: list[str] = []
        for cite in sent["citations"]:
            hit = packed[parse_citation_key(cite["key"]) - 1]  # type: ignore[operator]  # validated
            a, b = find_quote(hit.chunk.text, cite["quote"])  # type: ignore[misc]  # validated
            span = (hit.chunk.chunk_id, hit.chunk.start + a, hit.chunk.start + b)
            if span not in index:
                index[span] = len(citations) + 1
                citations.append(citation_for(index[span], hit, span[1], span[2]))
            if index[span] not in keys:
                keys.append(index[span])
            passages.append(hit.chunk.text)
        checks.append(check(text, keys, passages))
    # Abstained only when nothing verified was said: a cited fact outranks the model's flag.
    abstained = not citations and (bool(data.get("abstained")) or checks[0].text.startswith(ABSTAIN))
    text = " ".join((c.text + " " + "".join(f"[{k}]" for k in c.citations)).strip() for c in checks)
    if abstained:
        if not text.startswith(ABSTAIN):
            text = f"{ABSTAIN}. {text}"
        text = f"{text} Searched {searched}."
    return Answer(question, text, abstained, "llm", citations=citations, sentences=checks, passages=hits)


def partial_answer_text(raw: str) -> str:
    """The answer sentences readable so far in a streamed, possibly unfinished JSON reply."""
    out = []
    for m in re.finditer(r'"text"\s*:\s*"((?:[^"\\]|\\.)*)("?)', raw):
        body = m.group(1)
        if not m.group(2):  # still being written: drop a dangling escape
            body = re.sub(r"\\(?:u[0-9a-fA-F]{0,3})?$", "", body)
        try:
            out.append(json.loads(f'"{body}"'))
        except ValueError:
            out.append(body)
    return " ".join(out)


def redact(answer: Answer, secret: str | None) -> Answer:
    """``answer`` with ``secret`` masked wherever a message could have carried it."""
    if not secret:
        return answer
    if answer.notice:
        answer.notice = answer.notice.replace(secret, "***")
    answer.answer = answer.answer.replace(secret, "***")
    if answer.standalone_question:
        answer.standalone_question = answer.standalone_question.replace(secret, "***")
    for s in answer.sentences:
        s.problems = [p.replace(secret, "***") for p in s.problems]
    return answer
