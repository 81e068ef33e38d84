"""One `redis.asyncio` pool with keepalive and health checks, and a view of whether Redis is up.

Features ask `redis.client()` for a client; `None` means "Redis is off or down, use the
in-process fallback". A failing call marks Redis down; a background probe marks it up
again, so the app returns to Redis without a restart.
"""

from __future__ import annotations

import asyncio
import time

from loguru import logger
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from app.core.health import ComponentHealth, down
from app.core.settings import RedisSettings


class RedisManager:
    """Owns the Redis connection pool and the up/down state."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.prefix = settings.key_prefix
        self._client: aioredis.Redis | None = None
        self._up = False
        self._probe_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def is_up(self) -> bool:
        return self.enabled and self._up

    def key(self, *parts: str) -> str:
        """A namespaced key: every Redis key Sentinel writes goes through here."""
        return self.prefix + ":".join(parts)

    async def start(self) -> None:
        self._stopping = False
        if not self.enabled:
            logger.info("Redis disabled (REDIS_URL empty): using in-process fallbacks")
            return
        self._client = aioredis.from_url(
            self.settings.url,
            max_connections=self.settings.max_connections,
            socket_timeout=self.settings.socket_timeout_secs,
            socket_connect_timeout=self.settings.socket_timeout_secs,
            socket_keepalive=True,
            health_check_interval=self.settings.health_check_interval_secs,
            decode_responses=False,
        )
        await self._probe()
        if not self._up:
            logger.warning("Redis configured but unreachable at start-up; will keep retrying")
        self._probe_task = asyncio.create_task(self._probe_loop(), name="redis-probe")

    async def stop(self) -> None:
        self._stopping = True
        if self._probe_task is not None:
            self._probe_task.cancel()
            # redis-py can swallow a cancellation that lands inside a command; the flag ends
            # the loop anyway, and the wait is bounded so shutdown never hangs.
            await asyncio.wait({self._probe_task}, timeout=self.settings.retry_interval_secs + 2)
            self._probe_task = None
        if self._client is not None:
            await self._client.aclose()
        self._client = None
        self._up = False

    def client(self) -> aioredis.Redis | None:
        """The client when Redis is up, else `None` (use the in-process fallback)."""
        return self._client if self._up else None

    def raw_client(self) -> aioredis.Redis | None:
        """The client regardless of state (for probes and pub/sub reconnects)."""
        return self._client

    def mark_down(self, exc: BaseException | None = None) -> None:
        if self._up:
            logger.warning("Redis marked down: {}", type(exc).__name__ if exc else "unknown")
        self._up = False
        self._last_error = type(exc).__name__ if exc else None

    async def _probe(self) -> None:
        if self._client is None:
            return
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self.mark_down(exc)
        else:
            await self._mark_up()

    async def _mark_up(self) -> None:
        if self._up or self._client is None:
            return
        # Idle pooled connections opened before the outage are dead sockets now: drop them,
        # or the first command on each fails and flips Redis down again after recovery.
        await self._client.connection_pool.disconnect(inuse_connections=False)
        logger.info("Redis is up")
        self._up = True

    async def _probe_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.retry_interval_secs)
            await self._probe()

    async def health(self) -> ComponentHealth:
        if not self.enabled:
            return ComponentHealth(status="disabled")
        if self._client is None:
            return down("not started")
        started = time.perf_counter()
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self.mark_down(exc)
            return down(type(exc).__name__)
        await self._mark_up()
        return ComponentHealth(
            status="healthy", latency_ms=round((time.perf_counter() - started) * 1000, 3)
        )


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (the client is built without `decode_responses`, so bytes)."""
    return value.decode() if isinstance(value, bytes) else value
