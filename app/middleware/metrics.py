"""HTTP request metrics: count and latency by route template, method and status (pure ASGI)."""

from __future__ import annotations

import functools
import time
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import HTTP_LATENCY, HTTP_REQUESTS

UNMATCHED = "<unmatched>"


class HttpMetricsMiddleware:
    """Labels by the route *template* (`/api/v1/episodes/{id}`), never the raw path, so a
    scanner walking random URLs cannot blow up the number of series."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Labelled children, looked up once per series instead of through `.labels()` (which
        # validates and locks) on every request. Bounded: labels are templates, not paths.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
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


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template:
        return _with_router_prefix(scope["path"], template)
    # Answered before routing (401 from the gate, 413, 429): find the route it was meant for.
    return _match_openapi_template(scope)


def _with_router_prefix(path: str, template: str) -> str:
    """Restore the include prefix when the router reports a route relative to it.

    FastAPI may hand over the route of an included router (`/users/me` under `/api/v1`);
    the prefix is the part of the real path before the route's own segments.
    """
    if ":path}" in template:
        return template
    own = _segments(template)
    segments = [p for p in path.split("/") if p]
    if len(own) >= len(segments):
        return _without_prefix(template)  # the common case: the template is the whole path
    return _join(template, [*segments[: len(segments) - len(own)], *own])


@functools.cache
def _segments(template: str) -> tuple[str, ...]:
    return tuple(p for p in template.split("/") if p)


@functools.cache
def _without_prefix(template: str) -> str:
    return _join(template, list(_segments(template)))


def _join(template: str, parts: list[str]) -> str:
    full = "/" + "/".join(parts) if parts else "/"
    if template.endswith("/") and full != "/":
        full += "/"
    return full


def _match_openapi_template(scope: Scope) -> str:
    app = scope.get("app")
    patterns = getattr(app, "_sentinel_route_patterns", None)
    if patterns is None:
        patterns = []
        openapi = getattr(app, "openapi", None)
        if callable(openapi):
            for template in openapi().get("paths", {}):
                regex, _, _ = compile_path(template)
                patterns.append((regex, template))
        if app is not None:
            app._sentinel_route_patterns = patterns
    path = scope["path"]
    for regex, template in patterns:
        if regex.match(path):
            return template
    return UNMATCHED
