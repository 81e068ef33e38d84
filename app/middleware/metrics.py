"""Route templates for HTTP metric labels (`/api/v1/episodes/{id}`), never the raw path, so a
scanner walking random URLs cannot blow up the number of series. Counted by `EdgeMiddleware`."""

from __future__ import annotations

import functools

from starlette.routing import compile_path
from starlette.types import Scope

UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The route template a request matched (or was meant for), for metric labels."""
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
