"""Format readers: bytes of a txt, md, html, pdf or docx file to raw text plus title and date hints.

Used by ``rag.ingest.loading`` (which normalises the text and builds the Document). The
parsers are third-party code fed untrusted bytes, so their failures are caught
broadly and raised as ``Unreadable`` with a reason a person can act on.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

MB = 1024 * 1024
NO_TEXT_LAYER = "no text layer (scanned PDF?): needs OCR, which Dossier does not do"
_PYTHON_DOCX_TEMPLATE_DATE = "2013-12-23"  # python-docx's blank template: not a real creation date
_BINARY_SAMPLE = 8192
_MAX_UNPACKED = 512 * MB  # a .docx that inflates beyond this is a zip bomb, not a report


class Unreadable(Exception):
    """The reason a file cannot be read (``rag.ingest.loading`` adds the path and raises ``IngestError``)."""


@dataclass
class ReadResult:
    """What a format reader found: raw text plus title and date hints."""

    text: str
    title: str | None = None
    meta: dict[str, str] = field(default_factory=dict)  # lower-cased HTML meta / front matter dates
    fallback_date: str | None = None  # e.g. docx created date, used only when the text has none


# --- text decoding ---------------------------------------------------------------------------


def _cp1252_fallback(err: UnicodeError) -> tuple[str, int]:
    """Decode error handler: bytes that are not UTF-8 are read as cp1252 (mixed-encoding files)."""
    assert isinstance(err, UnicodeDecodeError)
    return err.object[err.start : err.end].decode("cp1252", errors="replace"), err.end


codecs.register_error("dossier-cp1252", _cp1252_fallback)
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\v") + b"\x7f"
# Order matters: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = {
    codecs.BOM_UTF32_LE: "utf-32",
    codecs.BOM_UTF32_BE: "utf-32",
    codecs.BOM_UTF8: "utf-8-sig",
    codecs.BOM_UTF16_LE: "utf-16",
    codecs.BOM_UTF16_BE: "utf-16",
}


def _decode(data: bytes) -> str:
    """Text from bytes: BOM, UTF-8, BOM-less UTF-16, then cp1252 for the bytes that are not UTF-8."""
    codec = next((c for bom, c in _BOMS.items() if data.startswith(bom)), None) or _bomless_utf16(data)
    if codec:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as e:
            raise Unreadable(f"invalid {codec.upper()} text near byte {e.start}") from None
        _refuse_binary(text.encode("utf-8", "surrogatepass"))
        return text
    _refuse_binary(data)
    if _is_utf8(data):
        return data.decode("utf-8")
    text = data.decode("utf-8", errors="dossier-cp1252")
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    if non_ascii > 0.3 * len(text) or text.count("\ufffd") > 0.01 * len(text):
        raise Unreadable(
            "not UTF-8 text, and does not look like Western (cp1252) text either: save it as UTF-8"
        )
    return text


def _is_utf8(data: bytes) -> bool:
    """True when ``data`` decodes as UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _bomless_utf16(data: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when NUL bytes fill every other position (UTF-16 without a BOM)."""
    sample = data[:_BINARY_SAMPLE]
    if len(sample) < 8 or len(sample) % 2:
        return None
    even, odd, half = sample[0::2].count(0), sample[1::2].count(0), len(sample) // 2
    if odd > 0.7 * half and not even:
        return "utf-16-le"
    if even > 0.7 * half and not odd:
        return "utf-16-be"
    return None


def _refuse_binary(data: bytes) -> None:
    """Reject bytes with NULs or many control characters."""
    nul = b"\x00" in data[:_BINARY_SAMPLE] or data.count(0) > 0.001 * len(data)
    control = len(data) - len(data.translate(None, _CONTROL_BYTES))
    if nul or control > 0.05 * max(len(data), 1):
        raise Unreadable("looks like binary data, not text")


# --- plain text and markdown -----------------------------------------------------------------


def plain(data: bytes) -> ReadResult:
    """Plain text: decoded, nothing else."""
    return ReadResult(_decode(data))


def markdown(text: str | bytes) -> ReadResult:
    """Markdown kept as text: front matter read, heading marks and setext underlines dropped."""
    if isinstance(text, bytes):
        text = _decode(text)
    text, title, meta = _front_matter(text.replace("\r\n", "\n"))
    lines = text.split("\n")
    for i, line in enumerate(lines):  # line by line: heading regexes backtrack badly on long lines
        heading = _atx_heading(line)
        if heading is not None:
            lines[i] = heading
        elif _SETEXT.fullmatch(line):
            if i and lines[i - 1].strip() and line.lstrip()[0] == "=":
                heading = lines[i - 1].strip()
            lines[i] = ""
        if heading and title is None:
            title = heading
    return ReadResult("\n".join(lines), title=title, meta=meta)


_ATX = re.compile(r" {0,3}#{1,6}(?=[ \t]|$)")
_SETEXT = re.compile(r" {0,3}(?:=+|-{3,})[ \t]*")


def _atx_heading(line: str) -> str | None:
    """The text of an ATX heading line ("## Title ##" -> "Title"), or None."""
    m = _ATX.match(line)
    if not m:
        return None
    content = line[m.end() :].strip()
    closed = content.rstrip("#")
    if not closed or closed[-1] in " \t":  # closing hashes need a space before them ("C#" stays)
        content = closed.rstrip()
    return content


def _front_matter(text: str) -> tuple[str, str | None, dict[str, str]]:
    """YAML-style front matter: (text without it, its title, its date as meta)."""
    front = re.match(r"---[ \t]*\n(.{0,4000}?)\n(?:---|\.\.\.)[ \t]*(?:\n|$)", text, re.DOTALL)
    if not front:
        return text, None, {}
    title, meta = None, {}
    for line in front.group(1).split("\n"):
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip().strip("'\"")
        if key == "title" and value:
            title = value
        elif key in ("date", "published", "pubdate", "publishdate") and value:
            meta["date"] = value
    return text[front.end() :], title, meta


# --- html ------------------------------------------------------------------------------------

_SKIP = {"script", "style", "nav", "head", "noscript", "template", "svg", "iframe", "object", "select"}
_BLOCK = frozenset(
    """p div h1 h2 h3 h4 h5 h6 li ul ol dl dt dd tr table section article main header footer aside
    blockquote pre figure figcaption hr address caption form fieldset details summary""".split()
)


_LONE_LT = re.compile(r"<(?=[^<>]*<)")


class _HTMLText(HTMLParser):
    """Streaming (non-recursive) HTML to text: blocks become paragraphs; title, h1, dates kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []
        self.title: list[str] | None = None
        self.h1: list[str] | None = None
        self.capture: str | None = None  # "title" or "h1" while inside one
        self.pre = 0
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "body" and "head" in self.skipping:  # </head> is optional
            self.skipping.clear()
        if tag == "meta":
            key = (a.get("property") or a.get("name") or a.get("itemprop") or "").lower()
            if key and a.get("content"):
                self.meta.setdefault(key, a["content"])
        elif tag == "time" and a.get("datetime"):
            self.meta.setdefault("time", a["datetime"])
        if tag in _SKIP:
            self.skipping.append(tag)
        elif tag == "title" and self.title is None and "svg" not in self.skipping:
            self.title, self.capture = [], "title"
        elif tag == "h1" and self.h1 is None and not self.skipping:
            self.h1, self.capture = [], "h1"
        self._block(tag, opening=True)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.skipping:
            del self.skipping[len(self.skipping) - 1 - self.skipping[::-1].index(tag) :]
        if tag in ("title", "h1") and self.capture == tag:
            self.capture = None
        self._block(tag, opening=False)

    def _block(self, tag: str, opening: bool) -> None:
        """Paragraph breaks for block elements, line breaks for <br>, spaces between cells."""
        if tag == "pre":
            self.pre = max(0, self.pre + (1 if opening else -1))
        if tag in _BLOCK:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("td", "th") and opening:
            self.parts.append(" \t ")

    def handle_data(self, data: str) -> None:
        if self.capture == "title" and self.title is not None:
            self.title.append(data)
        if self.skipping:
            if "script" in self.skipping and '"datePublished"' in data:
                m = re.search(r'"datePublished"\s*:\s*"([^"]{4,40})"', data)
                if m:
                    self.meta.setdefault("json-ld datepublished", m.group(1))
            return
        if self.capture == "h1" and self.h1 is not None:
            self.h1.append(data)
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_text(raw: str | bytes) -> ReadResult:
    """Text, title (``<title>`` then first ``<h1>``) and date hints of an HTML page."""
    text = _without_comments(_decode_html(raw) if isinstance(raw, bytes) else raw)
    # A "<" followed by another "<" before any ">" cannot open a tag; escaping it avoids
    # html.parser's quadratic rescans of unclosed tags ("<a <a <a ..." takes minutes).
    text = _LONE_LT.sub("&lt;", text)
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except Exception as e:  # html.parser is lenient; this is a last resort
        raise Unreadable(f"could not parse the HTML: {e}") from None
    title = "".join(parser.title or []).strip() or "".join(parser.h1 or []).strip() or None
    return ReadResult("".join(parser.parts), title=title, meta=parser.meta)


def _without_comments(text: str) -> str:
    """``text`` with ``<!-- -->`` comments removed (commented-out markup often holds "<")."""
    parts, pos = [], 0
    while (start := text.find("<!--", pos)) >= 0:
        parts.append(text[pos:start])
        end = text.find("-->", start + 4)
        pos = len(text) if end < 0 else end + 3  # an unclosed comment runs to the end, as in browsers
    parts.append(text[pos:])
    return "".join(parts)


def _decode_html(data: bytes) -> str:
    """Decode a page; a declared charset is used only when the bytes are not UTF-8."""
    declared = re.search(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", data[:4096], re.IGNORECASE)
    if declared and not data.startswith(tuple(_BOMS)) and not _is_utf8(data):
        try:
            codec = codecs.lookup(declared.group(1).decode("ascii")).name
        except (LookupError, UnicodeDecodeError):
            codec = "utf-8"
        if codec not in ("utf-8", "iso8859-1", "latin-1", "ascii"):  # latin-1: cp1252 fallback, as browsers
            _refuse_binary(data)
            return data.decode(codec, errors="replace")
    return _decode(data)


# --- pdf -------------------------------------------------------------------------------------


def _pdf(data: bytes) -> ReadResult:
    """Text of each page, joined by blank lines; encrypted files tried with the empty password."""
    import pypdf  # imported here: only PDF ingestion pays for it

    if b"%PDF-" not in data[:1024]:
        raise Unreadable("not a PDF file (no %PDF- header)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("password-protected: save an unprotected copy to load it")
        pages = list(reader.pages)
    except Unreadable:
        raise
    except Exception as e:  # pypdf raises many kinds of errors on bad files
        raise Unreadable(f"corrupt or truncated PDF, could not be read ({_short(e)})") from None
    texts, errors = [], []
    for page in pages:
        try:
            texts.append(page.extract_text() or "")
        except Exception as e:
            errors.append(_short(e))
    if errors and not any(t.strip() for t in texts):
        raise Unreadable(f"corrupt or truncated PDF, no page could be read ({errors[0]})")
    if not pages:
        raise Unreadable("empty: the PDF has no pages")
    if not any(t.strip() for t in texts):
        raise Unreadable(NO_TEXT_LAYER)
    return ReadResult("\n\n".join(texts), title=_pdf_title(reader))


def _pdf_title(reader: object) -> str | None:
    """The metadata title, unless it is empty or a leftover file name."""
    try:
        title = str((reader.metadata or {}).get("/Title") or "").strip()  # type: ignore[attr-defined]
    except Exception:  # a broken info dictionary only costs the title
        return None
    title = re.sub(r"^Microsoft (?:Word|PowerPoint) - ", "", title)
    junk = title.lower() in ("", "untitled", "title") or re.search(
        r"\.(docx?|pdf|txt|html?)$", title, re.IGNORECASE
    )
    return None if junk else title


def _short(e: Exception) -> str:
    """An exception as one short line for a rejection reason."""
    msg = str(e).strip().split("\n")[0][:160]
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


# --- docx ------------------------------------------------------------------------------------


def _docx(data: bytes) -> ReadResult:
    """Paragraphs and tables in document order; title from properties or the first heading."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise Unreadable("not a Word .docx file (it is not a zip package; old .doc files are not supported)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = {i.filename: i.file_size for i in z.infolist()}
        if "word/document.xml" not in members:
            raise Unreadable("a zip archive, not a Word document (no word/document.xml inside)")
        if sum(members.values()) > _MAX_UNPACKED:
            raise Unreadable(
                f"unpacks to {sum(members.values()) / MB:.0f} MB, more than a report should (zip bomb?)"
            )
        import docx  # imported here: only docx ingestion pays for it

        document = docx.Document(io.BytesIO(data))
        blocks, heading = _docx_blocks(document)
        title, created = document.core_properties.title, document.core_properties.created
    except Unreadable:
        raise
    except Exception as e:  # zipfile, python-docx and lxml raise many kinds of errors
        raise Unreadable(f"corrupt Word document, could not be read ({_short(e)})") from None
    fallback = created.date().isoformat() if created else None
    fallback = None if fallback == _PYTHON_DOCX_TEMPLATE_DATE else fallback
    return ReadResult("\n\n".join(blocks), title=(title or "").strip() or heading, fallback_date=fallback)


def _docx_blocks(document: object) -> tuple[list[str], str | None]:
    """Text blocks (a paragraph, or a table as rows of cells) and the first heading."""
    from docx.table import Table

    blocks: list[str] = []
    heading = None
    for item in document.iter_inner_content():  # type: ignore[attr-defined]
        if isinstance(item, Table):
            rows = []
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:  # merged cells repeat: keep one
                    if cell.text.strip() and (not cells or cells[-1] != cell.text.strip()):
                        cells.append(cell.text.strip())
                rows.append(" | ".join(cells))
            blocks.append("\n".join(r for r in rows if r))
            continue
        style = (getattr(item.style, "name", "") or "") if item.style is not None else ""
        if heading is None and item.text.strip() and style.startswith(("Heading", "Title")):
            heading = item.text.strip()
        blocks.append(item.text)
    return blocks, heading


READERS: dict[str, Callable[[bytes], ReadResult]] = {
    "txt": plain,
    "md": markdown,
    "html": html_text,
    "pdf": _pdf,
    "docx": _docx,
}
