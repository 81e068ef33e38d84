"""Input types that cannot poison storage: text without control characters and free-form JSON
bounded in depth, keys and size.

A NUL reaches PostgreSQL as an error (500) and other control characters forge log lines or break
clients; JSON nested hundreds of levels deep is accepted by the parser but breaks every later read
of the row. Both are refused at validation, with a 422 that says what is allowed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

from app.core.encoding import json_size

# C0 controls, DEL and C1 controls; line breaks and tabs are allowed only in multi-line text.
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

JSON_MAX_DEPTH = 16
JSON_MAX_KEYS = 1000
JSON_MAX_NODES = 10_000
JSON_MAX_BYTES = 64 * 1024


def _describe(char: str) -> str:
    return "NUL" if char == "\x00" else f"U+{ord(char):04X}"


def _first_control(pattern: re.Pattern[str], value: str) -> tuple[str, int] | None:
    """(the character, its position) of the first control character `pattern` refuses."""
    found = pattern.search(value)
    return (_describe(found.group()), found.start()) if found else None


# Each message is written out at its raise site: the Korean catalogue matches them whole.
def check_line(value: str) -> str:
    """One line of text: no control characters at all (names, titles, ids)."""
    if (bad := _first_control(_CONTROL_LINE, value)) is not None:
        char, pos = bad
        raise ValueError(
            f"contains a control character ({char}) at position {pos}; "
            "use printable text on one line"
        )
    return value


def check_multiline(value: str) -> str:
    """Free text: line breaks and tabs are fine, other control characters are not."""
    if (bad := _first_control(_CONTROL_MULTILINE, value)) is not None:
        char, pos = bad
        raise ValueError(
            f"contains a control character ({char}) at position {pos}; "
            "only line breaks and tabs are allowed"
        )
    return value


def check_json(value: Any) -> Any:
    """Bounded free-form JSON: depth, keys, nodes, size; no NUL in keys or strings."""
    if value is None:
        return value
    # Iterative walk: a deep value must not hit Python's recursion limit here either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    keys = nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > JSON_MAX_NODES:
            raise ValueError(f"has more than {JSON_MAX_NODES} values; send less metadata")
        if isinstance(node, dict):
            if depth > JSON_MAX_DEPTH:
                raise ValueError(f"nests deeper than {JSON_MAX_DEPTH} levels; flatten it")
            keys += len(node)
            if keys > JSON_MAX_KEYS:
                raise ValueError(f"has more than {JSON_MAX_KEYS} keys in all; send less metadata")
            for k, v in node.items():
                if not isinstance(k, str) or "\x00" in k:
                    raise ValueError("keys must be text without NUL characters")
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            if depth > JSON_MAX_DEPTH:
                raise ValueError(f"nests deeper than {JSON_MAX_DEPTH} levels; flatten it")
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            if "\x00" in node:
                raise ValueError("strings must not contain NUL characters")
        elif isinstance(node, float) and (node != node or node in (float("inf"), float("-inf"))):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
    size = json_size(value)
    if size > JSON_MAX_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {JSON_MAX_BYTES} are accepted")
    return value


# Document content (pasted bills, text pulled out of PDF/HWP/DOCX) carries page breaks and
# typographic spaces: those are normalised, not refused. What stays refused can hide text or
# reorder how it reads (bidi and zero-width characters) or breaks storage (NUL, controls).
_PAGE_BREAKS = str.maketrans(
    {"\f": "\n\n", "\v": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n\n"}
)
# Every Unicode space separator (Zs) other than the plain space: NBSP, en/em spaces, U+3000 …
_ODD_SPACE = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_DOC_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200d\u2060\ufeff]")


def normalize_document_text(value: str) -> str:
    """Line endings to LF, page breaks and line/paragraph separators to line breaks (a page
    break leaves a blank line), odd spaces to a plain space and a leading BOM dropped."""
    value = value.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return _ODD_SPACE.sub(" ", value.translate(_PAGE_BREAKS))


def strip_document_text(value: str) -> str:
    """Normalised text with every character `check_document` refuses removed (for text pulled
    out of files, where a stray control character must not cost the whole file)."""
    value = normalize_document_text(value)
    for pattern in (_DOC_CONTROL, _BIDI, _ZERO_WIDTH):
        value = pattern.sub("", value)
    return value


def check_document(value: str) -> str:
    """Document content: normalised as above; NUL, other controls, bidi and zero-width refused."""
    value = value.removeprefix("\ufeff")
    if (bad := _first_control(_DOC_CONTROL, value)) is not None:
        char, pos = bad
        raise ValueError(
            f"contains a control character ({char}) at position {pos}; "
            "only text, line breaks, tabs and page breaks are allowed"
        )
    if (bad := _first_control(_BIDI, value)) is not None:
        char, pos = bad
        raise ValueError(
            f"contains a bidirectional control character ({char}) at position {pos}; "
            "it can change how the text reads, so remove it"
        )
    if (bad := _first_control(_ZERO_WIDTH, value)) is not None:
        char, pos = bad
        raise ValueError(
            f"contains an invisible zero-width character ({char}) at position {pos}; remove it"
        )
    return normalize_document_text(value)


def check_optional_line(value: str | None) -> str | None:
    return None if value is None else check_line(value)


SafeLine = Annotated[str, AfterValidator(check_line)]
SafeText = Annotated[str, AfterValidator(check_multiline)]
# Knowledge document content: page breaks and odd spaces normalised (see check_document).
DocumentText = Annotated[str, AfterValidator(check_document)]
BoundedJson = Annotated[dict[str, Any], AfterValidator(check_json)]
