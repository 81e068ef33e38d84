"""One nesting limit for every JSON request body (`REQUEST_JSON_MAX_DEPTH`), login included.

Python's JSON parser recurses once per level: a 100,000-deep array raised `RecursionError`,
which FastAPI turns into a 400 but the login route (it reads its own body, form or JSON)
answered with a 500 and a long traceback. The depth is measured on the raw bytes, in C-speed
passes (string literals removed, brackets kept, innermost pairs peeled or a running sum), as
the last chunk of the body arrives: before any route parses it, and without a second copy of
the body for the app.
"""

from __future__ import annotations

import numpy as np
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NOT_BRACKET_OR_QUOTE = bytes(b for b in range(256) if b not in b'[]{}"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_OPEN = ord("[")


def json_depth(body: bytes, limit: int) -> int:
    """How deep arrays and objects nest in `body` (JSON text); a cheap lower bound when that is
    at most `limit` (only bodies that could be deeper are measured exactly)."""
    opening = body.count(b"[") + body.count(b"{")
    if opening <= limit:
        return opening
    kept = _brackets(body)
    # Peeling: each pass removes the innermost pairs, one level at a time, so a body of many
    # shallow arrays (a sequence of frames) takes two C-speed passes instead of a running sum.
    # A pass that removes less than half of what is left (deep or unbalanced text) hands over
    # to the running sum, so peeling never costs more than twice one pass.
    peeled = kept
    for depth in range(limit + 1):
        if not peeled:
            return depth
        shorter = peeled.replace(b"[]", b"")
        if 2 * len(shorter) > len(peeled):
            break
        peeled = shorter
    return _running_depth(kept)


def _brackets(body: bytes) -> bytes:
    """The brackets outside string literals, `{}` written as `[]`."""
    if b"\\" in body:
        # Escapes pair up left to right: drop escaped backslashes, then escaped quotes, so
        # every quote left opens or closes a string.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = body.translate(_SQUARE, _NOT_BRACKET_OR_QUOTE)
    if b'"' in kept:
        kept = b"".join(kept.split(b'"')[::2])
    return kept


def _running_depth(brackets: bytes) -> int:
    """The deepest running sum of openings minus closings (exact, also for unbalanced text)."""
    if not brackets:
        return 0
    steps = np.where(np.frombuffer(brackets, np.uint8) == _OPEN, 1, -1)
    return int(np.cumsum(steps).max())


def too_deep_message(limit: int) -> str:
    return (
        f"The JSON body nests deeper than {limit} levels (REQUEST_JSON_MAX_DEPTH); "
        "send flatter JSON"
    )


class JsonTooDeep(HTTPException):
    """Raised from inside the app's body read, so the error handlers render it (422)."""

    code = "json_too_deep"

    def __init__(self, limit: int) -> None:
        super().__init__(422, too_deep_message(limit))


def _reads_json(scope: Scope) -> bool:
    """Bodies routes parse as JSON: a JSON content type, or none at all (FastAPI then tries)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return b"json" in value.lower()
    return True


class JsonDepthMiddleware:
    """Refuses JSON bodies nested deeper than `max_depth` with 422 (pure ASGI)."""

    def __init__(self, app: ASGIApp, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or not _reads_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def checked_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    chunks.clear()
                    if json_depth(body, self.max_depth) > self.max_depth:
                        raise JsonTooDeep(self.max_depth)
            return message

        await self.app(scope, checked_receive, send)
