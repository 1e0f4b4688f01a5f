"""Loading reports: find files, read them, normalise, detect title and date, hash the text.

Every problem with one file becomes an ``IngestError`` (``load_file``) or a
``Rejection`` (``load_paths``) with a reason a person can act on; one bad file
never stops a batch. The per-format readers live in ``rag.ingest.readers``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import IngestError
from rag.ingest.readers import MB, READERS, ReadResult, Unreadable, html_text, markdown
from rag.ingest.readers import NO_TEXT_LAYER as NO_TEXT_LAYER  # re-exported: callers match on it
from rag.nlp import dates
from rag.nlp.text import normalize
from rag.types import Document

FORMATS = {  # file suffix (lower case) -> Document.format
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
TITLE_CHARS = 200


@dataclass
class Rejection:
    """A file that was not loaded, and why (a sentence for people)."""

    path: str
    reason: str


@dataclass
class LoadResult:
    """Documents loaded from a batch of paths, and the files turned away."""

    documents: list[Document] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # source name -> path it was read from


def content_id(text: str) -> str:
    """Content hash of a document's stored text (16 hex characters)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --- discovery -------------------------------------------------------------------------------


def discover(paths: list[Path]) -> tuple[list[tuple[Path, str]], list[Rejection]]:
    """Expand files and folders into sorted ``(path, source_name)`` pairs; hidden entries skipped.

    Other file types are skipped inside folders but rejected when named directly;
    unreadable entries and broken links are rejected; symlink loops are not followed.
    """
    found: list[tuple[Path, str]] = []
    rejected: list[Rejection] = []
    for given in map(Path, paths):
        problem = _unreadable(given)
        if problem:
            rejected.append(Rejection(str(given), problem))
        elif given.is_dir():
            _walk(given, found, rejected)
        elif given.suffix.lower() not in FORMATS:
            rejected.append(Rejection(str(given), _unsupported(given)))
        else:
            found.append((given, given.name))
    unique: dict[str, tuple[Path, str]] = {}  # the same file named twice (or via two folders) is read once
    for path, source in found:
        unique.setdefault(os.path.realpath(path), (path, source))
    return list(unique.values()), rejected


def _walk(root: Path, found: list[tuple[Path, str]], rejected: list[Rejection]) -> None:
    """Depth first, in name order, without recursion (deep trees cannot overflow the stack)."""
    visited = {os.path.realpath(root)}
    stack: list[tuple[Path, str]] = [(root, "")]
    files: list[tuple[Path, str]] = []
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            rejected.append(Rejection(str(folder), f"cannot open the folder: {e.strerror or e}"))
            continue
        subfolders = []
        for entry in (e for e in entries if not e.name.startswith(".")):
            path, source = Path(entry.path), prefix + entry.name
            supported = path.suffix.lower() in FORMATS
            problem = _unreadable(path)
            if problem:
                if supported or path.is_dir():
                    rejected.append(Rejection(str(path), problem))
            elif path.is_dir():
                real = os.path.realpath(path)
                if real not in visited:  # a symlink back up the tree would loop forever
                    visited.add(real)
                    subfolders.append((path, source + "/"))
            elif supported:
                files.append((path, source))
        stack.extend(reversed(subfolders))
    found.extend(sorted(files, key=lambda f: f[1].split("/")))


def _unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be read, or None."""
    if path.is_symlink() and not path.exists():
        return "broken link: the file it points to does not exist"
    if not path.exists():
        return "not found"
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return f"cannot read: {e.strerror or e}"
    if stat.S_ISDIR(mode):
        return None if os.access(path, os.R_OK | os.X_OK) else "cannot open the folder: permission denied"
    if not stat.S_ISREG(mode):
        return "not a regular file (a device, pipe or socket)"
    return None if os.access(path, os.R_OK) else "cannot read: permission denied"


def _unsupported(path: Path) -> str:
    """The rejection reason for a file type Dossier does not read."""
    kinds = ", ".join(sorted(FORMATS))
    what = f"'{path.suffix}' files" if path.suffix else "files without an extension"
    return f"unsupported file type: Dossier reads {kinds}, not {what}"


# --- loading ---------------------------------------------------------------------------------


def load_paths(paths: list[Path], *, max_bytes: int) -> LoadResult:
    """Discover and load every report under ``paths``; problems become rejections, never exceptions."""
    found, rejected = discover(paths)
    result = LoadResult(rejected=rejected)
    for path, source in found:
        try:
            doc = load_file(path, source, max_bytes=max_bytes)
        except IngestError as e:
            result.rejected.append(Rejection(str(path), e.reason))
            continue
        except Exception as e:  # a bug in one reader must not stop the batch
            result.rejected.append(Rejection(str(path), f"unexpected error while reading: {e!r}"))
            continue
        result.documents.append(doc)
        result.origins[doc.source] = str(path)
    return result


def load_file(path: Path, source: str, *, max_bytes: int) -> Document:
    """Read one report (``max_bytes``: ``int(settings.max_file_mb * MB)``); ``IngestError`` on any problem."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    try:
        if fmt is None:
            raise Unreadable(_unsupported(path))
        data = _read_capped(path, max_bytes)
        extracted = READERS[fmt](data)
        return _document(extracted, source=source, fmt=fmt)
    except Unreadable as e:
        raise IngestError(str(path), str(e)) from None


def load_text(
    text: str, *, source: str, title: str | None = None, date: str | None = None, fmt: str = "txt"
) -> Document:
    """A Document from text already in memory (evaluation corpora): same normalisation and detection."""
    reader = {"md": markdown, "html": html_text}.get(fmt, lambda t: ReadResult(t))
    try:
        extracted = reader(text)
        doc = _document(extracted, source=source, fmt=fmt)
    except Unreadable as e:
        raise IngestError(source, str(e)) from None
    if title is not None:
        doc.title = _clean_title(title)
    if date is not None:
        doc.date, doc.date_note = date, "given"
    return doc


def _read_capped(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing files over the size limit before reading them."""
    # 3 significant digits: RAG_MAX_FILE_MB=0.02 is 20971 bytes, shown as "0.02 MB", not "0.0199995 MB".
    limit = f"the {max_bytes / MB:.3g} MB limit (set RAG_MAX_FILE_MB to raise it)"
    try:
        size = path.stat().st_size
        if size > max_bytes:
            shown = f"{size / MB:.1f} MB" if size >= MB / 10 else f"{size / 1024:.1f} KB"  # never "0.0 MB"
            raise Unreadable(f"too large: {shown}, over {limit}")
        if not stat.S_ISREG(path.stat().st_mode):
            raise Unreadable("not a regular file (a folder, device, pipe or socket)")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise Unreadable(f"cannot read: {e.strerror or e}") from None
    if len(data) > max_bytes:  # grew since stat
        raise Unreadable(f"too large: over {limit}")
    return data


def _document(ex: ReadResult, *, source: str, fmt: str) -> Document:
    """Normalise extracted text and fill title, date and id."""
    text = normalize(ex.text)
    if not text:
        raise Unreadable("empty: no text")
    date, note = dates.publication_date(text, ex.meta)
    if date is None and ex.fallback_date and note == dates.NO_DATE:
        date, note = ex.fallback_date, "document properties: created date (no date in the text)"
    title = _clean_title(ex.title or "") or _first_line_title(text) or source
    return Document(
        source=source, title=title, text=text, date=date, date_note=note, format=fmt, doc_id=content_id(text)
    )


def _clean_title(title: str) -> str:
    """One line, tidy spaces, at most ``TITLE_CHARS`` characters (cut at a word)."""
    title = " ".join(normalize(title).split())
    if len(title) <= TITLE_CHARS:
        return title
    cut = title[: TITLE_CHARS - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[TITLE_CHARS // 2 :] else cut) + "\u2026"


def _first_line_title(text: str) -> str:
    """First line with a letter that is not just a date (a dateline is not a title)."""
    for line in text[:2000].split("\n")[:20]:
        line = line.strip()
        spans = dates.find_dates(line)
        if not re.search(r"\w", line) or sum(e - s for s, e, _v, _t in spans) > len(line) * 0.6:
            continue
        return _clean_title(line)
    return ""
