"""A file's text, for the types OpenAI's file_search reads that matter most: text, Markdown,
code, JSON, HTML (stdlib parser), PDF (pypdf, BSD-3), DOCX (python-docx, MIT) and PPTX
(python-pptx, MIT). CPU-bound: callers run it in a thread.

A type it does not read raises UnsupportedFile; a file of a type it reads that is corrupt,
empty or holds no text raises InvalidFile. Parsers' own errors never escape.
"""

from __future__ import annotations

import codecs
import io
import json
from html.parser import HTMLParser
from pathlib import PurePath


class UnsupportedFile(Exception):
    pass


class InvalidFile(Exception):
    pass


_CODE = {
    ".c", ".cc", ".cpp", ".cs", ".css", ".go", ".h", ".hpp", ".java", ".js", ".jsx", ".kt", ".lua", ".m", ".php",
    ".pl", ".py", ".r", ".rb", ".rs", ".scala", ".sh", ".sql", ".swift", ".tex", ".ts", ".tsx", ".vue", ".yaml",
    ".yml", ".toml", ".ini", ".cfg", ".xml", ".csv", ".tsv", ".rst", ".log",
}
_TEXT = {".txt", ".md", ".markdown", ".text"} | _CODE
SUPPORTED_EXTENSIONS = frozenset(_TEXT | {".json", ".html", ".htm", ".pdf", ".docx", ".pptx"})


def extract_text(data: bytes, filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if not data:
        raise InvalidFile(f"The file '{filename}' is empty.")
    if suffix not in SUPPORTED_EXTENSIONS:
        named = f"'{suffix}'" if suffix else "without an extension"
        raise UnsupportedFile(
            f"The file type {named} of '{filename}' is not supported for file_search. Supported: "
            + ", ".join(sorted(SUPPORTED_EXTENSIONS))
        )
    try:
        if suffix == ".pdf":
            text = _pdf(data)
        elif suffix == ".docx":
            text = _docx(data)
        elif suffix == ".pptx":
            text = _pptx(data)
        elif suffix in (".html", ".htm"):
            text = _html(_decode(data, filename))
        elif suffix == ".json":
            text = _decode(data, filename)
            json.loads(text)
        else:
            text = _decode(data, filename)
    except (InvalidFile, UnsupportedFile):
        raise
    except Exception as exc:
        kind = suffix.lstrip(".").upper()
        raise InvalidFile(f"The file '{filename}' could not be parsed as {kind}: {exc.__class__.__name__}: {str(exc)[:200]}") from None
    # PDFs in particular can yield NUL characters, which PostgreSQL cannot store in text.
    text = text.replace("\x00", "")
    if not text.strip():
        raise InvalidFile(f"The file '{filename}' contains no text.")
    return text


def _decode(data: bytes, filename: str) -> str:
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding)
    head = data[:8192]
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in head or controls > len(head) // 100:
        raise InvalidFile(f"The file '{filename}' is not text (it holds binary data).")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # text in a legacy single-byte encoding


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    pages = [page.extract_text() or "" for page in reader.pages]
    return "\n\n".join(p.strip() for p in pages if p.strip())


def _docx(data: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells]
            if any(cells):
                parts.append(" | ".join(cells))
    return "\n".join(parts)


def _pptx(data: bytes) -> str:
    from pptx import Presentation

    slides = []
    for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, 1):
        lines = []
        for shape in slide.shapes:
            if shape.has_text_frame and shape.text_frame.text.strip():
                lines.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    lines.append(" | ".join(cell.text.strip() for cell in row.cells))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame.text.strip():
            lines.append("Notes: " + slide.notes_slide.notes_text_frame.text)
        if lines:
            slides.append(f"Slide {number}\n" + "\n".join(lines))
    return "\n\n".join(slides)


class _VisibleText(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "head"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "table", "pre", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def _html(text: str) -> str:
    parser = _VisibleText()
    parser.feed(text)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)
