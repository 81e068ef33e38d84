"""Authorization where the route is declared: `Depends(require(Role.ADMIN))`.

A route lists the roles it accepts. A user role accepts that rank or higher
(viewer < operator < admin); `Role.SERVICE` accepts the service principal (`ACCESS_TOKEN`).
Enforced in production and staging; in development (the embedded default) every route stays
open and the caller is whoever sent a valid token, or None (anonymous).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.container import Container
from app.core.errors import Forbidden, Unauthorized
from app.core.security import Principal, Role
from app.middleware.auth import MSG_INVALID, bearer_token

# Only for the OpenAPI schema (Swagger's Authorize button); parsing is `bearer_token`.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

# Named policies, so the table in the README and the code use the same words.
READERS = (Role.VIEWER, Role.SERVICE)  # events, episodes, alerts, sources, the model
PRODUCERS = (Role.OPERATOR, Role.SERVICE)  # event ingest and analyze
SIGNED_IN = (Role.VIEWER,)  # any signed-in person: the assistant, their own account
ADMINS = (Role.ADMIN,)


def container_of(request: Request) -> Container:
    """The app's container (set by `create_app`): the one place routes reach it from."""
    return request.app.state.container


async def resolve_principal(request: Request) -> Principal | None:
    """The caller: set by the gate, else authenticated here from the bearer header.

    Raises 401 for a header that is present but not a valid token; None when there is none.
    """
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    token, problem = bearer_token(request.scope)
    if token is None:
        if problem and request.headers.get("authorization"):
            raise Unauthorized(problem)
        return None
    principal = await container_of(request).authenticator().authenticate(token)
    if principal is None:
        raise Unauthorized(MSG_INVALID)
    request.state.principal = principal
    return principal


def _describe(roles: tuple[Role, ...]) -> str:
    words = [f"{r.value} or above" if r is not Role.SERVICE else "the service token" for r in roles]
    return " or ".join(words)


def require(*roles: Role) -> Callable[..., Awaitable[Principal | None]]:
    """A dependency that admits a caller holding one of `roles` (gated environments only)."""

    async def dependency(
        request: Request, _token: Annotated[str | None, Depends(oauth2_scheme)]
    ) -> Principal | None:
        gated = container_of(request).settings().is_gated
        if not gated:
            try:
                return await resolve_principal(request)
            except Unauthorized:
                return None  # development stays open, even to a stale token
        principal = await resolve_principal(request)
        if principal is None:
            raise Unauthorized("Authorization header required")
        if not any(principal.has(role) for role in roles):
            raise Forbidden(
                f"This endpoint needs {_describe(roles)}; your role is {principal.role.value}",
                context={"required": [r.value for r in roles], "role": principal.role.value},
            )
        return principal

    dependency.roles = roles  # type: ignore[attr-defined]  # read by the route × role walk
    return dependency


async def metrics_access(request: Request) -> Principal | None:
    """`/metrics`: public with METRICS_PUBLIC, else any valid token (ops scrape with one)."""
    if container_of(request).settings().metrics_public:
        return None
    return await require(*READERS)(request, None)


Caller = Principal | None
