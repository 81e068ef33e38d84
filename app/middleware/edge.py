"""The outermost layer of every request: request id, access log, metrics, security headers.

One pure ASGI middleware with one `send` wrapper instead of four stacked ones (each layer was
another coroutine frame and another closure per message: together as much as the bare route).
CORS runs behind it only for requests that carry an `Origin` header, i.e. from browsers.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

from loguru import logger
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import REQUEST_ID
from app.core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from app.middleware.metrics import route_template

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
# JSON APIs never need to run scripts or load anything; the docs pages do (Swagger UI).
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_PREFIXES = ("/docs", "/redoc")
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
# Responses differ by Origin when CORS is on; caches must key on it even for requests without
# one (CORS itself only runs for requests that carry it).
_VARY_ORIGIN = (b"vary", b"Origin")


def loggable_path(path: str) -> str:
    """The path with control characters escaped (a decoded %0A must not forge a log line)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", path)[:2048]


class RequestIds:
    """Request ids as 32 hex digits: a random per-process prefix and a counter.

    Unique across processes and restarts like a uuid4, without a `getrandom` system call per
    request; request ids are for correlation, not secrets.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


class EdgeMiddleware:
    """Sets/propagates `X-Request-ID`, logs one access line, counts the request by route
    template, adds hardening headers, and sends browser requests through CORS.

    `access_exclude` paths (probes, scrapes) are not access-logged when they succeed: a
    liveness probe every second is noise, and its metrics are still recorded.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cors_options: dict[str, Any] | None = None,
        access_log: bool = True,
        access_exclude: tuple[str, ...] = (),
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, **cors_options) if cors_options is not None else None
        self.access_log = access_log
        self.access_exclude = frozenset(access_exclude)
        extra = list(_API_HEADERS)
        if hsts:
            extra.append(_HSTS)
        if self.cors is not None:
            extra.append(_VARY_ORIGIN)
        self._headers = tuple(extra)
        self._names = frozenset(name for name, _ in extra) | {_API_CSP[0]}
        self._ids = RequestIds()
        # Labelled children, looked up once per series instead of through `.labels()` (which
        # validates and locks) on every request. Bounded: labels are templates, not paths.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        from_browser = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"origin":
                from_browser = True
        request_id = (
            incoming if incoming is not None and _VALID_ID.match(incoming) else self._ids.next()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        path = scope["path"]
        csp = not path.startswith(_DOCS_PREFIXES)
        status = 500
        started = time.perf_counter()

        async def send_at_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                headers = list(headers)
                present = {name.lower() for name, _ in headers if name.lower() in self._names}
                for header in self._headers:
                    if header[0] not in present:
                        headers.append(header)
                if csp and _API_CSP[0] not in present:
                    headers.append(_API_CSP)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        inner = self.cors if from_browser and self.cors is not None else self.app
        token = REQUEST_ID.set(request_id)
        try:
            await inner(scope, receive, send_at_edge)
        finally:
            try:
                elapsed = time.perf_counter() - started
                self._observe(scope, status, elapsed)
                if status == 499:
                    # One line, not a 500 with a traceback: the client closed mid-request.
                    logger.info(
                        "{} {} -> client disconnected (499) after {:.1f} ms",
                        scope["method"],
                        loggable_path(path),
                        elapsed * 1000,
                    )
                elif self.access_log and (status >= 400 or path not in self.access_exclude):
                    logger.info(
                        "{} {} -> {} in {:.1f} ms",
                        scope["method"],
                        loggable_path(path),
                        status,
                        elapsed * 1000,
                    )
            finally:
                REQUEST_ID.reset(token)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = route_template(scope)
        method = scope["method"]
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = HTTP_REQUESTS.labels(method, route, str(status))
            self._counters[(method, route, status)] = counter
        counter.inc()
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = HTTP_LATENCY.labels(method, route)
            self._latencies[(method, route)] = latency
        latency.observe(elapsed)
