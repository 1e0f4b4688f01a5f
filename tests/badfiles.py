"""Generators of real report files and of the bad-input corpus, for tests of every stage.

``make_bad_corpus(folder)`` writes one file per hazard and returns, for each file
name, a substring expected in its rejection reason, or None when Dossier must
load it. Good files carry the word ``handled`` so tests can look for it in chunks.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

BODY = (
    "The working group met in Moscow to review joint projects. "
    "Both sides agreed to expand cooperation on engine production. "
    "Officials said the next meeting would be held in New Delhi."
)


def make_pdf(path: Path, paragraphs: list[str], *, title: str | None = None) -> Path:
    """A text PDF written with fpdf2 (core font, so text must be Latin-1)."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for para in paragraphs:
        pdf.multi_cell(0, 6, para)
        pdf.ln(4)
    pdf.output(str(path))
    return path


def make_image_pdf(path: Path) -> Path:
    """A PDF whose only page is a picture: what a scanner produces, no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (400, 120), "white")
    ImageDraw.Draw(img).rectangle((20, 20, 380, 100), outline="black", width=3)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(img, x=10, y=10, w=180)
    pdf.output(str(path))
    return path


def make_encrypted_pdf(
    path: Path, source: Path, *, user_password: str, owner_password: str = "owner"
) -> Path:
    """``source`` re-written with pypdf and encrypted (AES-256)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    with open(path, "wb") as f:
        writer.write(f)
    return path


def make_docx(
    path: Path,
    *,
    heading: str | None,
    paragraphs: list[str],
    table: list[list[str]] | None = None,
    title: str | None = None,
) -> Path:
    """A Word document written with python-docx."""
    import docx

    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    if heading:
        document.add_heading(heading, level=1)
    for para in paragraphs:
        document.add_paragraph(para)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))
    return path


def make_bad_corpus(folder: Path) -> dict[str, str | None]:
    """Write the bad-input corpus into ``folder``; name -> expected reason substring (None: loads)."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}

    def text(name: str, data: bytes, reason: str | None) -> None:
        (folder / name).write_bytes(data)
        expected[name] = reason

    text("empty.txt", b"", "empty")
    text("whitespace-only.txt", b"  \n\t\n \r\n   ", "empty")
    text("binary.txt", bytes(range(256)) * 64, "binary")
    text(
        "cp1252.txt",
        "Caf\u00e9 cr\u00e8me \u2013 \u201chandled\u201d na\u00efve r\u00e9sum\u00e9.".encode("cp1252"),
        None,
    )
    mixed = "UTF-8 line: caf\u00e9 handled.\n".encode() + "cp1252 line: na\u00efve \u2013 ok.\n".encode(
        "cp1252"
    )
    text("mixed-encodings.txt", mixed, None)
    text(
        "utf16-bom.txt",
        "\ufeffUTF-16 report, handled: \u0928\u092e\u0938\u094d\u0924\u0947.".encode("utf-16-le"),
        None,
    )
    text("long-line.txt", _long_line(2 * 1024 * 1024), None)
    nested = "<html><head><title>Nested handled</title></head><body>" + "<div>" * 10_000
    text("nested.html", (nested + "Deep text handled." + "</div>" * 10_000 + "</body></html>").encode(), None)
    text("annual report 2024.txt", f"Annual report handled.\n\n{BODY}".encode(), None)
    text(
        "rapport-\u00e9t\u00e9-\u65e5\u672c.md", f"# Rapport d'\u00e9t\u00e9 handled\n\n{BODY}".encode(), None
    )
    text("v1..2 report.txt", f"Dots in the name, handled.\n\n{BODY}".encode(), None)
    with open(folder / "huge.txt", "wb") as f:  # sparse: 50 MB on paper, nothing written
        f.truncate(50 * 1024 * 1024)
    expected["huge.txt"] = "RAG_MAX_FILE_MB"

    good_pdf = make_pdf(folder / "good.pdf", ["PDF report handled.", BODY], title="Good PDF")
    expected["good.pdf"] = None
    data = good_pdf.read_bytes()
    text("truncated.pdf", data[: len(data) // 3], "corrupt or truncated")
    text("corrupt.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n", "corrupt or truncated")
    make_encrypted_pdf(folder / "password.pdf", good_pdf, user_password="s3cret")
    expected["password.pdf"] = "password-protected"
    make_image_pdf(folder / "scanned.pdf")
    expected["scanned.pdf"] = "no text layer"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "not a Word document")
    text("disguised-zip.docx", buf.getvalue(), "not a Word document")
    text("old-word.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "not a zip package")
    make_docx(folder / "good.docx", heading="Word report handled", paragraphs=[BODY])
    expected["good.docx"] = None
    return expected


def _long_line(size: int) -> bytes:
    """One line of ``size`` bytes (sentences, no newline): a pasted report with lost line breaks."""
    sentence = b"Long line handled, sentence after sentence, without any newline at all. "
    return (sentence * (size // len(sentence) + 1))[:size]
