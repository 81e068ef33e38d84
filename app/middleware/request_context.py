"""Request tracking: sets/propagates `X-Request-ID`, logs method, path, status and duration."""

from __future__ import annotations

import re
import time
import uuid

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def loggable_path(path: str) -> str:
    """The path with control characters escaped (a decoded %0A must not forge a log line)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", path)[:2048]


class RequestContextMiddleware:
    """Pure ASGI middleware (no response buffering, so streaming responses pass through)."""

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        with logger.contextualize(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if self.access_log:
                    ms = (time.perf_counter() - started) * 1000
                    logger.info(
                        "{} {} -> {} in {:.1f} ms",
                        scope["method"],
                        loggable_path(scope["path"]),
                        status,
                        ms,
                    )
