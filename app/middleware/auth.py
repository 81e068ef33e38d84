"""The bearer gate (production and staging): every non-public path needs the service token or a
valid user JWT of an active account. It also holds Sentinel's one bearer parser."""

from __future__ import annotations

import fnmatch

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import send_error
from app.services.authn import Authenticator

MSG_MISSING = "Authorization header required"
MSG_FORMAT = "Invalid authorization header format"
MSG_INVALID = "Invalid access token"

# Signing in must work without a token; the routes themselves apply REGISTRATION and limits.
PUBLIC_PATHS = (
    "/api/v1/auth/login",
    "/api/v1/auth/google",
    "/api/v1/auth/register",
    "/api/v1/auth/password-reset",
    "/api/v1/auth/password-reset/confirm",
)
# The one-click acknowledgement links in alert messages: the signed link is the credential.
PUBLIC_PREFIXES = ("/ack/",)


def is_exempt(path: str, patterns: list[str]) -> bool:
    return (
        path in PUBLIC_PATHS
        or path.startswith(PUBLIC_PREFIXES)
        or any(path == p or fnmatch.fnmatchcase(path, p) for p in patterns)
    )


def bearer_token(scope: Scope) -> tuple[str | None, str | None]:
    """(token, problem) from the Authorization header; problem is one of the 401 messages.

    The one bearer parser: the gate, the route dependencies and the rate limiter all use it.
    """
    header = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            header = value.decode("latin-1").strip()
            break
    if not header:
        return None, MSG_MISSING
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        return None, MSG_FORMAT
    return token.strip(), None


class BearerGateMiddleware:
    """Active in production and staging (the app adds it only then); sets `state.principal`."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, exempt_paths: list[str]) -> None:
        self.app = app
        self.authenticator = authenticator
        self.exempt = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or is_exempt(scope["path"], self.exempt)
        ):
            await self.app(scope, receive, send)
            return
        token, problem = bearer_token(scope)
        principal = await self.authenticator.authenticate(token) if token else None
        if principal is None:
            await self._deny(scope, send, problem or MSG_INVALID)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    @staticmethod
    async def _deny(scope: Scope, send: Send, detail: str) -> None:
        await send_error(
            scope, send, 401, detail, "unauthorized", headers={"WWW-Authenticate": "Bearer"}
        )
