"""Request body limit (pure ASGI, streaming-safe) and the CORS options."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import send_error
from app.core.settings import Settings


def too_large_message(limit: int) -> str:
    return (
        f"Request body too large: the limit is {limit} bytes (MAX_BODY_BYTES); "
        "send less data per request (e.g. split a batch)"
    )


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413: at once when Content-Length says so, and
    while streaming when a chunked (or lying) body runs past the limit."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Upload routes (bulk import, training data) get their own, larger limit.
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""))
        if limit is not None and limit != self.max_bytes:
            await BodySizeLimitMiddleware(self.app, limit)(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, send)
                    return
                break

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the app's body read, so the error handlers render it.
                    raise HTTPException(413, too_large_message(self.max_bytes))
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await send_error(
            scope,
            send,
            413,
            too_large_message(self.max_bytes),
            "payload_too_large",
            headers={"Connection": "close"},
        )


def cors_options(settings: Settings) -> dict[str, Any] | None:
    """CORS from `CORS_ORIGINS`; without it, localhost pages in development and nothing in
    production (browsers then refuse cross-origin calls). None = no CORS at all."""
    origins = [o.strip() for o in settings.security.cors_origins.split(",") if o.strip()]
    regex = None
    if not origins:
        if settings.is_production:
            return None
        regex = r"https?://(localhost|127\.0\.0\.1)(:\d+)?"
    return {
        "allow_origins": origins,
        "allow_origin_regex": regex,
        "allow_credentials": False,  # bearer tokens, not cookies
        "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        "allow_headers": ["Authorization", "Content-Type", "X-Request-ID"],
        "expose_headers": ["X-Request-ID", "Retry-After"],
        "max_age": 600,
    }
