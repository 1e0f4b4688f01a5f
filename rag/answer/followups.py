"""Follow-up questions rewritten into standalone questions, so retrieval sees one question at a time.

"Where did he go next?" must become "Where did Sanjeev Kumar go next?" first. With an
LLM the ``rewrite`` prompt does it; without one (or when the model fails) a small
rule-based rewrite replaces he/she/his (they/their) with the person (the two people)
first named in the previous question or answer; for "it", "that meeting", "there"
or an elliptical follow-up ("And in Delhi?") it prefixes the previous question's key
terms, since a rule cannot tell which noun "it" means but retrieval only needs the terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.errors import RagError
from rag.nlp.claims import extract_facts
from rag.nlp.entities import looks_like_person
from rag.nlp.text import STOPWORDS, content_words, fold
from rag.ports import ChatModel
from rag.prompts import ABSTAIN, load_prompt

HISTORY_TURNS = 6  # the last few messages are enough to resolve a reference


HISTORY_CHARS = 600  # each message is cut to this many characters in the rewrite prompt


_PERSON_PRONOUNS = {"he": "", "she": "", "him": "", "her": "", "his": "'s", "hers": "'s"}


_GROUP_PRONOUNS = {"they": "", "them": "", "their": "'s"}


_PRONOUN_RE = re.compile(r"\b(" + "|".join([*_PERSON_PRONOUNS, *_GROUP_PRONOUNS]) + r")\b", re.IGNORECASE)


_THING_RE = re.compile(r"\b(?:it|its|they|them|their|this|that|these|those|there)\b", re.IGNORECASE)


_ELLIPTIC_START = re.compile(
    r"^\s*(?:and|but|also|what about|how about|and what about|what of)\b", re.IGNORECASE
)


_ELLIPTIC_WORD = re.compile(r"\b(?:else|too|as well|instead|again)\b", re.IGNORECASE)


_NOT_ENTITY = frozenset(
    "x the reports report question answer secretary director minister president chief deputy".split()
)


@dataclass
class Rewrite:
    """A standalone question and how it was made."""

    question: str
    method: str  # "none", "rules" or "llm"
    note: str | None = None  # why the LLM rewrite was not used, when it failed


def last_turns(history: list[dict] | None) -> tuple[str | None, str | None]:
    """The previous user question and the assistant answer that followed it (either may be None)."""
    prev_q = prev_a = None
    for msg in reversed(history or []):
        role, content = msg.get("role"), str(msg.get("content") or "").strip()
        if role == "assistant" and prev_a is None and prev_q is None and content:
            prev_a = content
        elif role == "user" and content:
            prev_q = content
            break
    return prev_q, prev_a


def _clean_answer(answer: str | None) -> str:
    """An earlier answer without citation markers; empty when it was an abstention."""
    if not answer or answer.startswith(ABSTAIN):
        return ""
    return re.sub(r"\s*\[\w+\]", "", answer)


def _entities(text: str) -> list[str]:
    return [n for n in extract_facts(text).names if n.lower() not in _NOT_ENTITY and len(n) > 1]


def rule_rewrite(question: str, history: list[dict] | None) -> Rewrite:
    """Resolve he/she/they to the previous turn's people, or prefix the previous question's key terms."""
    prev_q, prev_a = last_turns(history)
    if not prev_q:
        return Rewrite(question, "none")
    answer = _clean_answer(prev_a)
    people = [n for text in (prev_q, answer) for n in _entities(text) if looks_like_person(n)]
    changed = False

    def resolve(m: re.Match) -> str:
        nonlocal changed
        word = m.group(1).lower()
        if word in _PERSON_PRONOUNS and people:
            changed = True
            return people[0] + _PERSON_PRONOUNS[word]
        if word in _GROUP_PRONOUNS and len(people) >= 2:
            changed = True
            return f"{people[0]} and {people[1]}" + _GROUP_PRONOUNS[word]
        return m.group(0)

    rewritten = _PRONOUN_RE.sub(resolve, question)
    if changed:
        return Rewrite(rewritten, "rules")
    if _THING_RE.search(question) or _elliptical(question):
        # "it", "that meeting", "And in Delhi?": the referent is in the previous question; carry its terms.
        return Rewrite(f"{key_terms(prev_q)}: {question.strip()}", "rules")
    return Rewrite(question, "none")


def key_terms(question: str) -> str:
    """The previous question's content words in their original spelling, e.g. "co-chaired meeting Moscow"."""
    toks = re.findall(r"[\w'\u2019-]+", question)
    kept = [t for t in toks if t.lower() not in STOPWORDS and t.lower() not in _NOT_ENTITY]
    return " ".join(dict.fromkeys(kept))


def _elliptical(question: str) -> bool:
    """A follow-up that leans on the previous question: "And in Delhi?", "Who else?"."""
    own = content_words(fold(question))
    return bool(_ELLIPTIC_START.match(question) or _ELLIPTIC_WORD.search(question)) or len(own) <= 1


def format_history(history: list[dict]) -> str:
    """The last turns as plain "User:/Assistant:" lines for the rewrite prompt."""
    lines = []
    for msg in history[-HISTORY_TURNS:]:
        role = "User" if msg.get("role") == "user" else "Assistant"
        text = " ".join(str(msg.get("content") or "").split())
        lines.append(f"{role}: {text[:HISTORY_CHARS]}")
    return "\n".join(lines)


def llm_rewrite(chat: ChatModel, question: str, history: list[dict] | None) -> Rewrite:
    """Ask the model for a standalone question; fall back to the rules when it fails or rambles."""
    prev_q, _ = last_turns(history)
    if not prev_q or not history:
        return Rewrite(question, "none")
    messages = load_prompt("rewrite").render(history=format_history(history), question=question)
    try:
        text = chat.complete(messages).text or ""
    except RagError as exc:
        fallback = rule_rewrite(question, history)
        fallback.note = f"the follow-up was rewritten without the LLM ({exc.message})"
        return fallback
    line = _first_line(text)
    if not line or len(line) > 3 * len(question) + 200:
        return rule_rewrite(question, history)
    return Rewrite(line, "llm" if line != question else "none")


def _first_line(text: str) -> str:
    """The model's question without labels, quotes or extra lines."""
    for raw in text.strip().splitlines():
        line = re.sub(
            r"^(?:standalone question|question|rewritten)\s*:\s*", "", raw.strip(), flags=re.IGNORECASE
        )
        line = line.strip().strip("\"'\u201c\u201d`").strip()
        if line:
            return line
    return ""


def rewrite(question: str, history: list[dict] | None, chat: ChatModel | None = None) -> Rewrite:
    """The standalone form of ``question`` given the conversation so far."""
    if not history:
        return Rewrite(question, "none")
    return llm_rewrite(chat, question, history) if chat is not None else rule_rewrite(question, history)
