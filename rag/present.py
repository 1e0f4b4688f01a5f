"""Plain-text rendering of answers for the terminal (the page renders its own)."""

from __future__ import annotations

from rag.types import Answer


def answer_text(answer: Answer) -> str:
    """The answer with [n] markers, flagged sentences, and the cited spans below it."""
    lines: list[str] = []
    if answer.notice:
        lines.append(f"note: {answer.notice}")
    if answer.standalone_question and answer.standalone_question != answer.question:
        lines.append(f"(understood as: {answer.standalone_question})")
    if answer.sentences and not answer.abstained:
        for s in answer.sentences:
            marks = "".join(f"[{k}]" for k in s.citations)
            flag = "" if s.supported else f"  <- UNSUPPORTED: {'; '.join(s.problems)}"
            lines.append(f"{s.text} {marks}{flag}")
    else:
        lines.append(answer.answer)
    lines.append(
        f"\nmode: {answer.mode}"
        + (
            " (no LLM configured: answers are sentences taken from the reports)"
            if answer.mode == "extractive"
            else ""
        )
    )
    if answer.citations:
        lines.append("sources:")
        for c in answer.citations:
            lines.append(f"  [{c.key}] {c.source} [{c.start}:{c.end}) \u201c{c.quote}\u201d")
    elif answer.abstained and answer.passages:
        lines.append("closest passages:")
        for h in answer.passages[:3]:
            lines.append(f"  - {h.chunk.source} [{h.chunk.start}:{h.chunk.end}) {h.chunk.text[:160]}...")
    return "\n".join(lines)
