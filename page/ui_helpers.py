"""Pure helpers for the page (``app.py``): safe rendering of report text, uploads, labels.

No Streamlit here, so everything is testable without a page. Report text is
untrusted (an uploaded report may contain ``<script>``): every function that
turns it into Markdown or HTML escapes all of it, and the only tags in the
HTML we build are our own ``<div>``, ``<mark>`` and ``<br>``.
The Evaluate tab's tables and chart columns are in ``page.ui_scores``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag import present
from rag.types import Answer, Citation, Filters, IngestReport, Progress

MB = 1024 * 1024
UPLOAD_TYPES = ["txt", "md", "html", "htm", "pdf", "docx"]
MAX_NAME_BYTES = 200  # well under the 255-byte limit of common file systems

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them
# also disarms Streamlit's extensions (:emoji:, :red[...], $math$) and any inline HTML.
_MD_PUNCT = re.compile(r"([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")
# Characters that would mean something to Markdown even inside our HTML block: written as entities.
_HTML_EXTRA = {c: f"&#{ord(c)};" for c in "$:[]*_`~\\#|{}"}
_BIDI = {chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]}


# --- Markdown and HTML from untrusted text ------------------------------------------------------


def md_escape(text: str) -> str:
    """``text`` as Markdown that renders literally (no links, HTML, emphasis, math or directives)."""
    text = _one_line_endings(text)
    lines = [_MD_PUNCT.sub(r"\\\1", line.strip()) for line in text.split("\n")]
    return "  \n".join(lines)  # keep the report's line breaks as hard breaks


def html_escape(text: str) -> str:
    """``text`` as HTML text inside our own block: escaped, line breaks as ``<br>``, no raw newline.

    A blank line would end the HTML block and hand the rest back to the Markdown
    parser, so newlines become ``<br>`` and the block stays one line.
    """
    out = html.escape(_one_line_endings(text), quote=True)
    out = "".join(_HTML_EXTRA.get(ch, ch) for ch in out)
    return out.replace("\n", "<br>")


def _one_line_endings(text: str) -> str:
    text = str(text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
    return "".join(ch for ch in text if ch == "\n" or ch == "\t" or unicodedata.category(ch) != "Cc")


def excerpt_bounds(text: str, start: int, end: int, context: int | None) -> tuple[int, int]:
    """Where an excerpt of ``context`` characters either side of [start, end) begins and ends."""
    if context is None:
        return 0, len(text)
    lo, hi = max(0, start - context), min(len(text), end + context)
    if lo > 0:  # start at a word boundary
        space = text.find(" ", lo, start)
        lo = space + 1 if space != -1 else lo
    if hi < len(text):
        space = text.rfind(" ", end, hi)
        hi = space if space != -1 else hi
    return lo, hi


def highlight_html(text: str, start: int, end: int, *, context: int | None = 500) -> str:
    """The report (or an excerpt around the span) as escaped HTML with ``[start, end)`` in ``<mark>``.

    This is the only string the page renders with ``unsafe_allow_html``: every
    character of the report goes through ``html_escape``; the tags are ours.
    """
    text = str(text or "")
    start = max(0, min(int(start), len(text)))
    end = max(start, min(int(end), len(text)))
    lo, hi = excerpt_bounds(text, start, end, context)
    before = ("\u2026 " if lo > 0 else "") + html_escape(text[lo:start])
    after = html_escape(text[end:hi]) + (" \u2026" if hi < len(text) else "")
    marked = f'<mark class="dossier-cited">{html_escape(text[start:end])}</mark>' if end > start else ""
    style = (
        "white-space:pre-wrap;line-height:1.6;padding:0.6rem 0.8rem;border-left:3px solid #f0b429;"
        "max-height:28rem;overflow-y:auto;font-size:0.95rem"
    )
    return f'<div class="dossier-doc" style="{style}">{before}{marked}{after}</div>'


# --- answers ---------------------------------------------------------------------------------------


def markers(keys: Iterable[int]) -> str:
    """Citation markers as Markdown badges, e.g. ``:blue-badge[1]``."""
    return "".join(f" :blue-badge[{int(k)}]" for k in keys)


UNSUPPORTED_FLAG = " :orange-badge[\u26a0 unsupported]"  # put after a sentence the checker could not support


def answer_markdown(answer: Answer) -> str:
    """The answer as safe Markdown: escaped sentences, numbered markers, a flag on unsupported ones."""
    if answer.abstained:
        return md_escape(answer.answer)
    return sentences_markdown(answer.sentences, answer.answer)


def _ok(sentence: Any) -> bool:
    """Supported, or the uncited "The reports do not say ..." tail of a partial answer."""
    return bool(sentence.supported) or (not sentence.citations and _is_abstain_tail(sentence.text))


def _is_abstain_tail(text: str) -> bool:
    from rag.prompts import ABSTAIN

    return text.strip().startswith(ABSTAIN)


def unsupported_sentences(sentences: list[Any]) -> list[tuple[int, str, list[str]]]:
    """(1-based position, sentence, problems) of every sentence flagged as unsupported."""
    return [
        (i, s.text, list(s.problems) or ["no citation supports it"])
        for i, s in enumerate(sentences, 1)
        if not _ok(s)
    ]


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut at a word boundary to about ``limit`` characters, with an ellipsis."""
    text = " ".join(str(text or "").split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:.") + "\u2026"


def plural(n: int | None, word: str) -> str:
    """'1 report', '3 reports'."""
    n = int(n or 0)
    return f"{n} {word}" + ("" if n == 1 else "s")


def citation_label(c: Citation) -> str:
    """Expander label of a citation: marker, title, source and date (escaped Markdown)."""
    title = shorten(c.title or c.source, 70)
    label = f"[{c.key}] {title} \u2014 {c.source} \u00b7 {c.date or 'undated'}"
    return md_escape(label)


def history_for(messages: list[dict]) -> list[dict[str, str]]:
    """The conversation as the pipeline wants it: role and content only (failed turns left out)."""
    return [
        {"role": m["role"], "content": str(m.get("content") or "")}
        for m in messages
        if m.get("role") in {"user", "assistant"} and not m.get("error")
    ]


# --- sidebar and library ---------------------------------------------------------------------


def human_bytes(n: int | None) -> str:
    """1536 -> '1.5 KB'."""
    if n is None:
        return "n/a"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def mode_lines(status: dict) -> tuple[str, str]:
    """(headline, explanation) of the answering mode for the status panel."""
    if status.get("mode") == "llm":
        return (
            f"LLM mode: {status.get('llm_model')}",
            (
                f"Answers are written by {status.get('llm_model')} at {status.get('llm_endpoint')} "
                "and every citation is checked against the reports."
            ),
        )
    return (
        "Extractive mode: no LLM is configured",
        (
            "Answers are sentences quoted from the reports, not generated text. "
            "Set OPENAI_API_KEY (and optionally OPENAI_BASE_URL) to use an LLM."
        ),
    )


def sources_table(infos: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows of the library table (plain values; the dataframe shows them as text)."""
    return [
        {
            "Title": i.title,
            "Date": i.date or "",
            "Source": i.source,
            "Chunks": i.chunks,
            "Format": i.format,
            "Size": human_bytes(i.chars),
        }
        for i in infos
    ]


def date_bounds(infos: Iterable[Any]) -> tuple[str | None, str | None]:
    """Earliest and latest ISO publication date among stored reports."""
    dates = sorted(i.date for i in infos if i.date)
    return (dates[0], dates[-1]) if dates else (None, None)


def iso_to_date(value: str | None) -> Any:
    """'2024-05-03', '2024-05' or '2024' as a ``datetime.date`` (missing parts are 1), or None."""
    import datetime as dt

    if not value:
        return None
    parts = (str(value).split("-") + ["1", "1"])[:3]
    try:
        return dt.date(int(parts[0]), int(parts[1] or 1), int(parts[2] or 1))
    except ValueError:
        return None


def make_filters(sources: Iterable[str] | None, date_from: Any = None, date_to: Any = None) -> Filters:
    """Filters from the widgets' values (dates may be ``datetime.date`` or ISO strings)."""
    chosen = tuple(sources or ()) or None
    iso = lambda d: d.isoformat() if hasattr(d, "isoformat") else (str(d) if d else None)
    return Filters(sources=chosen, date_from=iso(date_from), date_to=iso(date_to))


# --- uploads ------------------------------------------------------------------------------------------


def sanitize_filename(name: str) -> str:
    """A safe base name for an uploaded file: no folders, no '..', no control characters; unicode kept."""
    name = unicodedata.normalize("NFC", str(name or ""))
    name = name.replace("\\", "/").split("/")[-1]  # strip directories, whichever separator was used
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cs"} and ch not in _BIDI)
    name = name.strip().lstrip(".").strip().rstrip(". ")  # no hidden files, no '..', no trailing dots
    if not name:
        return "upload"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, suffix = name.rpartition(".")
        suffix = dot + suffix if dot and len(suffix) <= 10 else ""
        stem = stem if suffix else name
        while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
            stem = stem[:-1]
        name = stem.rstrip(". ") + suffix
    return name


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, dot + suffix) if dot else (name, "")
    n = 2
    while f"{stem} ({n}){suffix}" in taken:
        n += 1
    return f"{stem} ({n}){suffix}"


@dataclass
class SavedUploads:
    """Uploads written to disk (path -> the name the user gave) and the ones refused."""

    paths: dict[Path, str]
    rejected: list[dict[str, str]]


def save_uploads(files: Iterable[tuple[str, bytes]], folder: Path, *, max_bytes: int) -> SavedUploads:
    """Write ``(name, bytes)`` uploads into ``folder`` under sanitised, unique base names.

    Oversized files are refused without being written. Nothing is written
    outside ``folder``, whatever the name says.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    saved: dict[Path, str] = {}
    rejected: list[dict[str, str]] = []
    taken: set[str] = set()
    for given, data in files:
        shown = sanitize_filename(given)
        if len(data) > max_bytes:
            rejected.append(
                {
                    "path": shown,
                    "reason": f"too large ({human_bytes(len(data))}); the limit is "
                    f"{human_bytes(max_bytes)} (RAG_MAX_FILE_MB)",
                }
            )
            continue
        name = _unique(shown, taken)
        target = (root / name).resolve()
        if target.parent != root:  # cannot happen after sanitising; refuse rather than trust it
            rejected.append(
                {"path": shown, "reason": "refused: the file name points outside the upload folder"}
            )
            continue
        target.write_bytes(data)
        taken.add(name)
        saved[target] = name
    return SavedUploads(saved, rejected)


def ingest_uploads(
    pipeline: Any, files: Iterable[tuple[str, bytes]], folder: Path, progress: Progress | None = None
) -> Any:
    """Save uploads into ``folder`` and ingest them; every refusal is reported under the file's name.

    Returns the pipeline's ``IngestReport`` with size refusals added to ``rejected``
    and temp paths replaced by upload names. The written files are removed
    afterwards: the store keeps each report's full text.
    """
    max_bytes = int(pipeline.settings.max_file_mb * MB)
    saved = save_uploads(files, folder, max_bytes=max_bytes)
    report = IngestReport()
    try:
        if saved.paths:
            report = pipeline.ingest(list(saved.paths), progress=progress)
    finally:
        for path in saved.paths:
            path.unlink(missing_ok=True)
    names = {str(p): n for p, n in saved.paths.items()}
    for entry in report.added + report.updated + report.unchanged + report.rejected:
        entry["path"] = names.get(str(entry.get("path")), entry.get("path"))
    report.rejected[:0] = saved.rejected
    return report


def ingest_summary(report: Any) -> list[tuple[str, str]]:
    """(level, message) lines for an ingest report: 'success', 'info' or 'error' (texts not escaped)."""
    lines: list[tuple[str, str]] = []
    if report.added:
        lines.append(
            (
                "success",
                f"Added {len(report.added)} report(s): "
                + ", ".join(f"{e.get('path')} ({e.get('chunks', 0)} chunks)" for e in report.added),
            )
        )
    if report.updated:
        lines.append(
            (
                "success",
                f"Updated {len(report.updated)} report(s): "
                + ", ".join(str(e.get("path")) for e in report.updated),
            )
        )
    for e in report.unchanged:
        why = (
            f"same text as {e['duplicate_of']}"
            if e.get("duplicate_of")
            else "already in the library, unchanged"
        )
        lines.append(("info", f"{e.get('path')}: {why}"))
    for e in report.rejected:
        lines.append(("error", f"{e.get('path')}: {e.get('reason')}"))
    return lines


# --- briefs --------------------------------------------------------------------------------------------


def sentences_markdown(sentences: list[Any], fallback: str = "") -> str:
    """Checked sentences as safe Markdown with markers and a flag on unsupported ones."""
    if not sentences:
        return md_escape(fallback)
    return " ".join(
        md_escape(s.text) + markers(s.citations) + ("" if _ok(s) else UNSUPPORTED_FLAG) for s in sentences
    )


def summary_sections(summary: Any, *, quotes: bool = False) -> list[tuple[str, str]]:
    """(heading, safe Markdown body) of each section of a structured summary (``rag.present``), escaped."""
    return present.summary_sections(
        summary, escape=md_escape, badge=lambda s: f":gray-badge[{s}]", quotes=quotes
    )
