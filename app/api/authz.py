"""Authorization where the route is declared: `Depends(require(Role.ADMIN))`.

A route lists the roles it accepts. A user role accepts that rank or higher
(viewer < operator < admin); `Role.SERVICE` accepts the service principal (`ACCESS_TOKEN`).
Enforced in production and staging; in development (the embedded default) every route stays
open and the caller is whoever sent a valid token, or None (anonymous).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, ValidationError

from app.core.encoding import loads
from app.core.errors import Forbidden, Unauthorized
from app.core.security import Principal, Role
from app.middleware.auth import MSG_INVALID, bearer_token

if TYPE_CHECKING:  # the container wires the routers, not the other way round
    from app.container import Container

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
    """A dependency that admits a caller holding one of `roles` (gated environments only).

    Its `check(request)` is the policy itself; on a `GuardedRoute` it runs before FastAPI
    solves the route's other dependencies (see there).
    """

    async def check(request: Request) -> Principal | None:
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

    async def dependency(
        request: Request, _token: Annotated[str | None, Depends(oauth2_scheme)]
    ) -> Principal | None:
        return await check(request)

    dependency.roles = roles  # type: ignore[attr-defined]  # read by the route × role walk
    dependency.check = check  # type: ignore[attr-defined]  # run directly by GuardedRoute
    return dependency


class JsonRequest(Request):
    """A request whose JSON body is read by `loads` (orjson, the same values as the
    `json.loads` FastAPI calls): parsing a 100-frame sequence took 160 µs, now 25 µs."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


def fast_body(endpoint: Endpoint) -> Endpoint:
    """Marks an agent hot path whose parameters are `body` (a JSON model) and `request`, and
    which returns a `Response`: a guarded route then validates the body in one pydantic pass
    (`model_validate_json`) and calls it directly, without FastAPI's dependency solver.

    Only a body sent as `application/json` that validates takes this path; anything else goes
    the usual way, so refusals keep their exact wording.
    """
    endpoint.fast_body = typing.get_type_hints(endpoint)["body"]  # type: ignore[attr-defined]
    return endpoint


class GuardedRoute(APIRoute):
    """A route whose `dependencies=[Depends(require(...))]` guard runs as a plain call before
    FastAPI's dependency solver, instead of inside it.

    Declared and documented exactly like any route (the OpenAPI document still shows the
    bearer requirement); only the execution differs. FastAPI's solver costs about 15-20 µs per
    dependency on every request (cache keys, scope checks, parameter extraction), as much as an
    event's whole share of a database write, and a refused caller is now answered before its
    body is parsed. Routes without such a guard, or with the caller as a parameter, are
    handled as usual.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        guards = [d.dependency for d in self.dependencies if hasattr(d.dependency, "check")]
        if len(guards) != 1:
            plain = super().get_route_handler()

            async def parsed_fast(request: Request) -> Response:
                return await plain(JsonRequest(request.scope, request.receive))

            return parsed_fast
        guard = guards[0]
        check: Callable[[Request], Awaitable[Principal | None]] = guard.check  # type: ignore[union-attr]
        declared = self.dependant
        # FastAPI solves `self.dependant`; hand it the same tree without the guard while the
        # handler is built, then put the declared one back (OpenAPI reads it).
        self.dependant = dataclasses.replace(
            declared, dependencies=[d for d in declared.dependencies if d.call is not guard]
        )
        try:
            handler = super().get_route_handler()
        finally:
            self.dependant = declared

        model: type[BaseModel] | None = getattr(self.endpoint, "fast_body", None)
        endpoint = self.endpoint

        async def guarded(request: Request) -> Response:
            request = JsonRequest(request.scope, request.receive)
            await check(request)
            if model is not None and request.headers.get("content-type") == "application/json":
                try:
                    body = model.model_validate_json(await request.body())
                except ValidationError:
                    pass  # FastAPI reads the (cached) body again and words the refusal
                else:
                    return await endpoint(body=body, request=request)
            return await handler(request)

        return guarded


async def metrics_access(request: Request) -> Principal | None:
    """`/metrics`: public with METRICS_PUBLIC, else any valid token (ops scrape with one)."""
    if container_of(request).settings().metrics_public:
        return None
    return await require(*READERS)(request, None)


Caller = Principal | None
