"""Per-principal rate limits by route group (the `limits` library).

Counters live in Redis (shared by every worker, through the app's own connection pool and
key prefix) and fall back to an in-process store while Redis is off or down, so a Redis
outage never turns into refused requests.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import (
    RateLimiter as Strategy,
)
from loguru import logger
from redis.exceptions import RedisError

from app.core.redis import RedisManager
from app.core.settings import RateLimitSettings, SecuritySettings

# First matching prefix wins; paths under no prefix fall in "default".
# Routers added later are covered by their path, with no edit in the router itself.
ROUTE_GROUPS: tuple[tuple[str, str | None], ...] = (
    ("/health", None),
    ("/metrics", None),
    ("/docs", None),
    ("/redoc", None),
    ("/openapi.json", None),
    ("/favicon.ico", None),
    ("/api/v1/auth/", "auth"),
    ("/api/v1/events", "events"),
    ("/event/", "events"),
    ("/api/v1/behavior/analyze", "analyze"),
    ("/behavior/analyze", "analyze"),
    ("/api/v1/rag/ask", "ask"),
)
GROUPS = ("default", "events", "analyze", "ask", "auth")
# Sign-in limits, counted by the login route itself (not by path): all attempts per client,
# failures per account. They use an exact moving window: the sliding-window counter weights
# the previous window, so right after a window boundary it reads 2.999 for three failures and
# lets a fourth guess through.
LOGIN_GROUPS = {
    "login_client": "login_max_per_client",
    # Keyed by (account, client): a client that guessed wrong too often is refused for that
    # account only (the owner elsewhere is not).
    "login_account": "login_max_failures_per_account",
    "password_reset_client": "password_reset_max_per_client",
    "password_reset_account": "password_reset_max_per_account",
}
# Failures per account from every client, only counted (they slow sign-ins, never refuse);
# same window as LOGIN_MAX_FAILURES_PER_ACCOUNT.
ACCOUNT_FAILURES = "login_account_total"
_MOVING = {*LOGIN_GROUPS, ACCOUNT_FAILURES}


def route_group(path: str) -> str | None:
    """The limit group of a path, or None when the path is never limited."""
    for prefix, group in ROUTE_GROUPS:
        if path == prefix.rstrip("/") or path.startswith(prefix):
            return group
    return "default"


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit: allowed, or refused with how long to wait."""

    allowed: bool
    limit: str = ""
    retry_after_secs: int = 0


class RateLimiter:
    """Checks and counts one request against its group's limits."""

    def __init__(
        self,
        settings: RateLimitSettings,
        redis: RedisManager,
        security: SecuritySettings | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.limits: dict[str, list[RateLimitItem]] = {
            group: parse_many(getattr(settings, group)) for group in GROUPS
        }
        security = security or SecuritySettings()
        for group, field in LOGIN_GROUPS.items():
            self.limits[group] = parse_many(getattr(security, field))
        # A counter, not a limit: an amount no one reaches, in the per-account window.
        window = self.limits["login_account"][0]
        self.limits[ACCOUNT_FAILURES] = [type(window)(1000, window.multiples)]
        memory = MemoryStorage()
        self._memory: tuple[Strategy, Strategy] = (
            SlidingWindowCounterRateLimiter(memory),
            MovingWindowRateLimiter(memory),
        )
        self._shared: tuple[Strategy, Strategy] | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def _limiter(self, group: str) -> Strategy | None:
        """The Redis-backed strategy for `group`, or None while Redis is off."""
        shared = self._redis_limiters()
        if shared is None:
            return None
        return shared[1] if group in _MOVING else shared[0]

    def _fallback(self, group: str) -> Strategy:
        return self._memory[1] if group in _MOVING else self._memory[0]

    def _redis_limiters(self) -> tuple[Strategy, Strategy] | None:
        client = self.redis.client()
        if client is None:
            return None
        if self._shared is None:
            # `limits` types its options as scalars, but passes them to redis-py as they are.
            pool: dict[str, Any] = {"connection_pool": client.connection_pool}
            storage = RedisStorage(
                "async+" + self.redis.settings.url,
                implementation="redispy",
                key_prefix=self.redis.key("ratelimit"),
                **pool,
            )
            self._shared = (
                SlidingWindowCounterRateLimiter(storage),
                MovingWindowRateLimiter(storage),
            )
        return self._shared

    async def hit(self, group: str, key: str) -> Decision:
        items = self.limits.get(group) or self.limits["default"]
        limiter = self._limiter(group)
        if limiter is not None:
            try:
                return await self._hit(limiter, items, group, key)
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
                logger.warning("rate limit store unavailable, counting in process: {}", exc)
        return await self._hit(self._fallback(group), items, group, key)

    async def blocked(self, group: str, key: str) -> int:
        """Seconds to wait if `key` has used up a limit of `group` (without counting); else 0."""
        items = self.limits[group]
        limiter = self._limiter(group)
        if limiter is not None:
            try:
                return await self._blocked(limiter, items, group, key)
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        return await self._blocked(self._fallback(group), items, group, key)

    @staticmethod
    async def _blocked(
        limiter: Strategy,
        items: list[RateLimitItem],
        group: str,
        key: str,
    ) -> int:
        for item in items:
            if not await limiter.test(item, group, key):
                stats = await limiter.get_window_stats(item, group, key)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return 0

    @staticmethod
    async def _hit(
        limiter: Strategy,
        items: list[RateLimitItem],
        group: str,
        key: str,
    ) -> Decision:
        for item in items:
            if not await limiter.hit(item, group, key):
                stats = await limiter.get_window_stats(item, group, key)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                return Decision(False, str(item), wait)
        return Decision(True)

    async def count(self, group: str, key: str) -> int:
        """Hits of `key` in the current window of `group`'s first limit (nothing counted)."""
        item = self.limits[group][0]
        limiter = self._limiter(group)
        if limiter is not None:
            try:
                stats = await limiter.get_window_stats(item, group, key)
                return item.amount - stats.remaining
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        stats = await self._fallback(group).get_window_stats(item, group, key)
        return item.amount - stats.remaining

    async def clear(self, group: str, key_prefix: str) -> None:
        """Forget every counter of `group` whose key starts with `key_prefix` (`sentinel
        unlock`), in Redis and in this process."""
        pattern = f"LIMITER/{group}/{key_prefix}"
        client = self.redis.client()
        if client is not None:
            try:
                match = self.redis.key("ratelimit") + "*" + pattern + "*"
                keys = [k async for k in client.scan_iter(match=match, count=500)]
                if keys:
                    await client.delete(*keys)
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        storage = self._memory[1].storage
        for table in ("events", "storage", "expirations"):
            found = getattr(storage, table, {})
            for key in [k for k in found if isinstance(k, str) and pattern in k]:
                found.pop(key, None)
