"""HTTP request metrics: count and latency by route template, method and status (pure ASGI)."""

from __future__ import annotations

import time

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import HTTP_LATENCY, HTTP_REQUESTS

UNMATCHED = "<unmatched>"


class HttpMetricsMiddleware:
    """Labels by the route *template* (`/api/v1/episodes/{id}`), never the raw path, so a
    scanner walking random URLs cannot blow up the number of series."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            route = _route_template(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


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
    own = [p for p in template.split("/") if p]
    segments = [p for p in path.split("/") if p]
    prefix = segments[: len(segments) - len(own)] if len(own) <= len(segments) else []
    full = "/" + "/".join([*prefix, *own]) if (prefix or own) else "/"
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
