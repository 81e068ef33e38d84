"""Rate-limit middleware: one hit per request against the limits of its route group."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import send_error
from app.core.rate_limit import RateLimiter, route_group
from app.core.security import Principal, TokenService
from app.middleware.auth import bearer_token


class RateLimitMiddleware:
    """Keys by user or service token when a valid one is sent, else by client IP.

    Sits inside the production gate, which has already resolved the principal there.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter, tokens: TokenService) -> None:
        self.app = app
        self.limiter = limiter
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        group = route_group(scope["path"])
        if group is None:
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.hit(group, self._key(scope))
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        await _refuse(scope, send, group, decision.limit, decision.retry_after_secs)

    def _key(self, scope: Scope) -> str:
        principal: Principal | None = scope.get("state", {}).get("principal")
        if principal is None:
            token, _ = bearer_token(scope)
            principal = self.tokens.authenticate(token) if token else None
        if principal is not None:
            return principal.rate_key
        # Already the real client behind TRUSTED_PROXIES (ClientAddressMiddleware), else the peer.
        client = scope.get("client")
        return f"ip:{client[0] if client else 'unknown'}"


async def _refuse(scope: Scope, send: Send, group: str, limit: str, retry_after: int) -> None:
    await send_error(
        scope,
        send,
        429,
        f"Rate limit exceeded for {group} requests ({limit}); retry in {retry_after} s",
        "rate_limited",
        headers={"Retry-After": str(retry_after)},
    )
