"""Text out of document files: Markdown/text, PDF, DOCX, HWP and HWPX.

Every reader gives the same Markdown-ish text, so the section chunker treats all files alike:
headings become `#` lines (sections and their heading path), a table becomes one `| a | b |`
line per row, paragraphs are separated by a blank line. A PDF also gives the offset at which
each page starts, which turns into each chunk's page number. Everything here is blocking (file
parsing); callers run it in a worker thread.

HWP 5 and HWPX are read with `unhwp` (MIT, no Python dependencies: a bundled native reader).
Next to the pure-Python `hwp-hwpx-parser` it was 3-5x faster on HWPX and small HWP files (and
in the same range on a 1.9 MB HWP), and it is the only one of the two that keeps the outline
levels (개요 1, 2 …), which become the sections the chunker cites.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from app.schemas.safety import strip_document_text

TEXT_EXTENSIONS = (".md", ".markdown", ".txt")
FILE_EXTENSIONS = (*TEXT_EXTENSIONS, ".pdf", ".docx", ".hwp", ".hwpx")
# Keys of a document's metadata that place its text on the file's pages.
PAGE_STARTS = "page_starts"
FIRST_PAGE = "first_page"

_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+\s*$")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DOCX_HEADING = re.compile(r"^(?:heading|제목)\s*(\d)$", re.IGNORECASE)
# "제2장 위원회", "제3조(정의)", "제10조의2 신고": the parts of a Korean law or bill.
_ARTICLE = re.compile(r"^제\s*\d+\s*(편|장|절|조)(?:의\s*\d+)?(?:\s*\([^)]{1,40}\))?(?:\s+\S.*)?$")
_ARTICLE_LEVELS = {"편": 1, "장": 2, "절": 3, "조": 4}


class DocumentUnreadable(Exception):
    """A file whose text cannot be read; `reason` says why, for a person."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """A file's text as Markdown-ish lines, its first top-level heading and its page starts
    (offsets into `text` where pages 1, 2, … begin; empty when the format has no pages)."""

    text: str
    title: str | None = None
    page_starts: list[int] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        """What a document's metadata keeps of the file (its page starts, if any)."""
        return {PAGE_STARTS: self.page_starts} if self.page_starts else {}


def extract(name: str, raw: bytes) -> ExtractedDocument:
    """The text of file `name`, by its extension; `DocumentUnreadable` when it has none."""
    suffix = PurePosixPath(name).suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise DocumentUnreadable(
            name,
            f"{suffix or 'no extension'} files are not read; send {', '.join(FILE_EXTENSIONS)}",
        )
    try:
        doc = reader(raw)
    except _Unreadable as exc:
        raise DocumentUnreadable(name, str(exc)) from exc
    except Exception as exc:  # parsers of damaged files raise almost anything
        kind = suffix.lstrip(".").upper()
        raise DocumentUnreadable(
            name, f"it is damaged or not a {kind} file ({type(exc).__name__})"
        ) from exc
    if not doc.text.strip():
        raise DocumentUnreadable(name, "it has no text (a scanned image needs OCR first)")
    return doc


# -- text ------------------------------------------------------------------------------------


def decode_text(raw: bytes) -> str | None:
    """UTF-8 (with or without BOM), else CP949 (older Korean files); None when neither fits."""
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return clean_text(raw.decode(encoding))
        except UnicodeDecodeError:
            continue
    return None


def clean_text(text: str) -> str:
    """Page breaks and odd spaces normalised, characters that must never reach storage (NUL,
    controls, bidi and zero-width characters) dropped, outer blank space trimmed."""
    return strip_document_text(text).strip()


def _text_file(raw: bytes) -> ExtractedDocument:
    text = decode_text(raw)
    if text is None:
        raise _Unreadable("it is not UTF-8 or CP949 text")
    return ExtractedDocument(text, _first_heading(text))


# -- PDF ---------------------------------------------------------------------------------------


def _pdf(raw: bytes) -> ExtractedDocument:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    # An owner password alone (printing/copying limits) opens with an empty user password.
    if reader.is_encrypted and not reader.decrypt(""):
        raise _Unreadable("it is encrypted (password-protected); upload an unprotected copy")
    pages = [clean_text(page.extract_text() or "") for page in reader.pages]
    headings = _pdf_outline(reader)
    for page, title, level in headings:
        pages[page] = _mark_heading(pages[page], title, level)
    starts, parts, pos = [], [], 0
    for text in pages:
        starts.append(pos)
        parts.append(text)
        pos += len(text) + 2
    text = "\n\n".join(parts)
    return ExtractedDocument(text, _first_heading(text), starts if len(starts) > 1 else [])


def _pdf_outline(reader: Any) -> list[tuple[int, str, int]]:
    """(page index, title, level) of each outline entry (bookmark); [] without an outline."""
    found: list[tuple[int, str, int]] = []

    def walk(items: list[Any], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            with contextlib.suppress(Exception):  # a broken bookmark only loses its heading
                found.append((reader.get_destination_page_number(item), str(item.title), level))

    try:
        walk(reader.outline, 1)
    except Exception:  # a broken outline: the text stays, without headings
        return []
    return [(p, t, lvl) for p, t, lvl in found if p is not None and p >= 0 and t.strip()]


def _mark_heading(page: str, title: str, level: int) -> str:
    """The page's first line that is the bookmark's title, made a `#` heading."""
    lines = page.split("\n")
    for i, line in enumerate(lines):
        if line.strip() == title.strip():
            lines[i] = f"{'#' * min(level, 6)} {line.strip()}"
            break
    return "\n".join(lines)


# -- DOCX --------------------------------------------------------------------------------------


def _docx(raw: bytes) -> ExtractedDocument:
    import docx

    if raw.startswith(_OLE_MAGIC):  # Word wraps a password-protected file in OLE
        raise _Unreadable("it is encrypted (password-protected) or an old .doc file")
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise _Unreadable("it is damaged or not a DOCX file (not a zip archive)")
    blocks = list(_docx_blocks(docx.Document(io.BytesIO(raw))))
    text = clean_text("\n\n".join(b for b in blocks if b))
    return ExtractedDocument(text, _first_heading(text))


def _docx_blocks(document: Any) -> Iterator[str]:
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            yield "\n".join(_docx_rows(block))
            continue
        text = block.text.strip()
        level = _docx_level(block)
        yield f"{'#' * level} {' '.join(text.split())}" if level and text else text


def _docx_level(paragraph: Any) -> int:
    """Heading level of a paragraph from its style ("Heading 2", "제목 2", "Title") or 0."""
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name.lower() == "title":
        return 1
    match = _DOCX_HEADING.match(name.strip())
    return min(int(match.group(1)), 6) if match else 0


def _docx_rows(table: Any) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a merged cell repeats across the columns it spans
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            yield _row(cells)


# -- HWP and HWPX ---------------------------------------------------------------------------


def _hwp(raw: bytes) -> ExtractedDocument:
    import unhwp

    try:
        with unhwp.parse_bytes(raw) as result:
            model = json.loads(result.json)
    except unhwp.UnhwpError as exc:
        raise _Unreadable(_hwp_reason(exc)) from exc
    blocks = [
        _hwp_block(block) for section in model.get("sections", []) for block in section["content"]
    ]
    text = clean_text("\n\n".join(b for b in blocks if b))
    # Not the file's metadata title: templates leave theirs behind ("제목입니다.").
    return ExtractedDocument(text, _first_heading(text))


def _hwp_reason(exc: Exception) -> str:
    import unhwp

    kind = getattr(exc, "kind", None)
    kinds = unhwp.ErrorKind
    if kind in (kinds.ENCRYPTED, kinds.DISTRIBUTION_RESTRICTED):
        return "it is encrypted or distribution-restricted; save an unprotected copy in Hancom"
    if kind in (kinds.UNKNOWN_FORMAT, kinds.UNSUPPORTED_FORMAT):
        return "it is not a supported HWP version (HWP 5.0, HWP 3 and HWPX are read)"
    return f"it is damaged ({kind.name.lower() if isinstance(kind, kinds) else 'unreadable'})"


def _hwp_block(block: dict[str, Any]) -> str:
    """One paragraph or table of unhwp's document model as Markdown-ish text. The model, not
    unhwp's own Markdown: that one escapes text, and drops the top outline level (개요 1)."""
    if "Paragraph" in block:
        paragraph = block["Paragraph"]
        text = _hwp_text(paragraph).strip()
        level = _hwp_level(paragraph.get("style") or {}, text)
        return f"{'#' * level} {' '.join(text.split())}" if level and text else text
    if "Table" in block:
        rows = (
            [
                " ".join(_hwp_text(p) for p in cell.get("content", [])).split()
                for cell in row["cells"]
            ]
            for row in block["Table"].get("rows", [])
        )
        return "\n".join(_row([" ".join(c) for c in cells]) for cells in rows if any(cells))
    return ""  # images


def _hwp_text(paragraph: dict[str, Any]) -> str:
    return "".join(
        item["Text"].get("text", "") for item in paragraph.get("content", []) if "Text" in item
    )


def _hwp_level(style: dict[str, Any], text: str) -> int:
    """Heading level: the paragraph's outline level (개요 1 = 1), its heading style, or, for a
    short line like "제3장 벌칙" or "제2조(정의)" in a law or bill, the article structure."""
    head = style.get("head") or {}
    if head.get("kind") == "Outline":
        return min(int(head.get("level", 0)) + 1, 6)
    if int(style.get("heading_level") or 0) > 0:
        return min(int(style["heading_level"]), 6)
    if len(text) <= 60 and (match := _ARTICLE.match(text)):
        return _ARTICLE_LEVELS[match.group(1)]
    return 0


# -- shared ------------------------------------------------------------------------------------


class _Unreadable(Exception):
    """A reader's reason; `extract` adds the file name."""


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def _first_heading(text: str) -> str | None:
    """The first top-level (`#`) heading, the natural title of a document."""
    for match in _HEADING.finditer(text):
        if match.group(0).startswith("# "):
            return match.group(1).strip() or None
    return None


def page_at(meta: dict[str, Any] | None, offset: int) -> int | None:
    """The 1-based page that character `offset` of a document falls on, from its metadata's
    page starts; None for a document without pages (or with page data it did not get from
    a file)."""
    starts = (meta or {}).get(PAGE_STARTS)
    if not isinstance(starts, list) or not starts or not all(type(s) is int for s in starts):
        return None
    first = (meta or {}).get(FIRST_PAGE, 1)
    first = first if type(first) is int else 1
    return first + max(bisect_right(starts, offset) - 1, 0)


def without_pages(meta: dict[str, Any] | None) -> dict[str, Any]:
    """Metadata with the page data taken out (it no longer fits edited text)."""
    return {k: v for k, v in (meta or {}).items() if k not in (PAGE_STARTS, FIRST_PAGE)}


def split_pages(doc: ExtractedDocument, size: int) -> list[tuple[str, dict[str, Any]]]:
    """The text in parts of at most `size` characters, each with its own page metadata (the
    page starts shifted to the part, and the page the part begins on)."""
    parts = []
    for offset in range(0, len(doc.text), size):
        part = doc.text[offset : offset + size]
        meta: dict[str, Any] = {}
        if doc.page_starts:
            first = max(bisect_right(doc.page_starts, offset) - 1, 0)
            inside = [s - offset for s in doc.page_starts[first + 1 :] if s < offset + size]
            meta = {PAGE_STARTS: [0, *inside], FIRST_PAGE: first + 1}
        parts.append((part, meta))
    return parts


_READERS: dict[str, Callable[[bytes], ExtractedDocument]] = {
    **{ext: _text_file for ext in TEXT_EXTENSIONS},
    ".pdf": _pdf,
    ".docx": _docx,
    ".hwp": _hwp,
    ".hwpx": _hwp,
}
