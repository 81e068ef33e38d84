"""Section-aware chunking: split a document along its markdown structure before its size.

Headings open sections; fenced code blocks, lists, tables and paragraphs are blocks that are
never cut unless a single block is longer than the chunk size. Consecutive blocks of one
section are packed into chunks of at most `chunk_size` characters; a chunk never spans two
sections. Each chunk keeps its heading path ("Gemini / LLM 쿼터 초과 처리 › 설정/튜닝 방법")
and its character offsets in the document: `content[start:end] == chunk.text`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

SECTION_SEPARATOR = " › "
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SUBHEADING = re.compile(r"^#{2,6}\s+\S")
_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_RULE = re.compile(r"^\s{0,3}(?:-{3,}|\*{3,}|_{3,})\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?。？！])\s+|(?<=다\.)\s*|(?<=요\.)\s*")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of a document."""

    ordinal: int
    section: str
    start: int
    end: int
    text: str

    def chunk_id(self, doc_id: uuid.UUID | str) -> str:
        """Stable id: the same text at the same place of the same document keeps its id."""
        raw = f"{doc_id}\x1f{self.start}\x1f{self.end}\x1f{self.section}\x1f{self.text}"
        return hashlib.sha256(raw.encode()).hexdigest()[:40]


@dataclass(slots=True)
class _Block:
    start: int
    end: int
    section: str


def _is_empty_fence(text: str) -> bool:
    lines = [ln for ln in text.strip().splitlines() if not _FENCE.match(ln)]
    return not any(ln.strip() for ln in lines)


class SectionChunker:
    """Markdown-aware splitter (plain text works too: paragraphs and sentences)."""

    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size

    def _blocks(self, content: str) -> list[_Block]:
        blocks: list[_Block] = []
        headings: list[tuple[int, str]] = []
        fence: str | None = None
        current: _Block | None = None
        kind = ""
        pos = 0
        previous_blank = False
        for line in content.splitlines(keepends=True):
            start, end = pos, pos + len(line.rstrip("\r\n"))
            pos += len(line)
            stripped = line.strip()
            section = SECTION_SEPARATOR.join(text for _, text in headings)
            if fence is not None:
                assert current is not None
                marker = _FENCE.match(line)
                if marker and marker.group(1)[0] == fence[0] and stripped.strip("`~") == "":
                    current.end = end
                    fence = None
                    blocks.append(current)
                    current = None
                    continue
                # A fence left open by its author: a new fence with a language tag, or a
                # `## heading` after a blank line, ends it (shell comments have one `#`).
                reopened = marker is not None and stripped.strip("`~") != ""
                if not (reopened or (_SUBHEADING.match(line) and previous_blank)):
                    current.end = end
                    previous_blank = not stripped
                    continue
                fence = None
                blocks.append(current)
                current = None
            previous_blank = not stripped
            marker = _FENCE.match(line)
            heading = _HEADING.match(line)
            ends_block = marker or heading or not stripped or _RULE.match(line)
            if ends_block and current is not None:
                blocks.append(current)
                current = None
            if marker:
                fence = marker.group(1)
                current = _Block(start, end, section)
                continue
            if heading:
                level = len(heading.group(1))
                headings = [h for h in headings if h[0] < level] + [(level, heading.group(2))]
                continue
            if not stripped or _RULE.match(line):
                continue
            line_kind = "list" if _LIST_ITEM.match(line) else "table" if stripped[0] == "|" else "p"
            # A new list or table starts a new block; continuation lines join the open block.
            if current is not None and line_kind != kind and line_kind != "p":
                blocks.append(current)
                current = None
            if current is None:
                current = _Block(start, end, section)
                kind = line_kind
            else:
                current.end = end
        if current is not None:
            blocks.append(current)
        return blocks

    def _pieces(self, content: str, block: _Block) -> list[tuple[int, int]]:
        """A block longer than the chunk size, cut at lines, then sentences, then hard."""
        size = self.chunk_size
        if block.end - block.start <= size:
            return [(block.start, block.end)]
        cuts: list[int] = [block.start]
        text = content[block.start : block.end]
        for m in re.finditer(r"\n", text):
            cuts.append(block.start + m.end())
        for m in _SENTENCE_END.finditer(text):
            cuts.append(block.start + m.end())
        cuts = [*sorted(set(cuts)), block.end]
        pieces: list[tuple[int, int]] = []
        start = block.start
        last = start
        for cut in cuts[1:]:
            if cut - start > size and last > start:
                pieces.append((start, last))
                start = last
            while cut - start > size:  # one sentence longer than a chunk
                pieces.append((start, start + size))
                start += size
            last = cut
        if last > start:
            pieces.append((start, last))
        return pieces

    def split(self, content: str) -> list[Chunk]:
        spans: list[tuple[int, int, str]] = []
        for block in self._blocks(content):
            for start, end in self._pieces(content, block):
                if (
                    spans
                    and spans[-1][2] == block.section
                    and end - spans[-1][0] <= self.chunk_size
                ):
                    spans[-1] = (spans[-1][0], end, block.section)
                else:
                    spans.append((start, end, block.section))
        chunks: list[Chunk] = []
        for start, end, section in spans:
            # Trim whitespace so offsets point at the text itself.
            raw = content[start:end]
            lead = len(raw) - len(raw.lstrip())
            text = raw.strip()
            if not text or _is_empty_fence(text):
                continue
            chunks.append(Chunk(len(chunks), section, start + lead, start + lead + len(text), text))
        return chunks
