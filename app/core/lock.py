"""Distributed lock: Redis (`SET NX PX` + token-checked Lua) or in-process when Redis is off.

Usage::

    async with locks.lock("alerts:dispatch", ttl=10) as acquired:
        if acquired:
            ...

or manually with ``token = await locks.acquire(name, ttl)``, ``extend`` and ``release``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from app.core.redis import RedisManager

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class Lock(Protocol):
    """A named lease with an owner token."""

    async def acquire(self, name: str, ttl: float, wait: float = 0.0) -> str | None: ...
    async def extend(self, name: str, token: str, ttl: float) -> bool: ...
    async def release(self, name: str, token: str) -> bool: ...


async def _poll(
    try_once: Callable[[], Awaitable[str | None]], wait: float, interval: float = 0.05
) -> str | None:
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        token = await try_once()
        if token is not None or time.monotonic() >= deadline:
            return token
        await asyncio.sleep(min(interval, max(deadline - time.monotonic(), 0)))


class RedisLock:
    """Lock on one Redis key; only the holder's token can extend or release it."""

    def __init__(self, client: aioredis.Redis, prefix: str = "lock:") -> None:
        self._client = client
        self._prefix = prefix
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)

    def _key(self, name: str) -> str:
        return self._prefix + name

    async def acquire(self, name: str, ttl: float, wait: float = 0.0) -> str | None:
        token = secrets.token_hex(16)

        async def once() -> str | None:
            ok = await self._client.set(self._key(name), token, nx=True, px=int(ttl * 1000))
            return token if ok else None

        return await _poll(once, wait)

    async def extend(self, name: str, token: str, ttl: float) -> bool:
        return bool(await self._extend(keys=[self._key(name)], args=[token, int(ttl * 1000)]))

    async def release(self, name: str, token: str) -> bool:
        return bool(await self._release(keys=[self._key(name)], args=[token]))


class LocalLock:
    """In-process lock with the same semantics (expiry, owner tokens), for running without Redis."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}

    def _current(self, name: str) -> str | None:
        held = self._held.get(name)
        if held is None:
            return None
        token, expires = held
        if time.monotonic() >= expires:
            del self._held[name]
            return None
        return token

    async def acquire(self, name: str, ttl: float, wait: float = 0.0) -> str | None:
        async def once() -> str | None:
            if self._current(name) is not None:
                return None
            token = secrets.token_hex(16)
            self._held[name] = (token, time.monotonic() + ttl)
            return token

        return await _poll(once, wait)

    async def extend(self, name: str, token: str, ttl: float) -> bool:
        if self._current(name) != token:
            return False
        self._held[name] = (token, time.monotonic() + ttl)
        return True

    async def release(self, name: str, token: str) -> bool:
        if self._current(name) != token:
            return False
        del self._held[name]
        return True


class LockService:
    """Picks the Redis lock while Redis is up and the in-process one otherwise."""

    def __init__(self, redis: RedisManager) -> None:
        self._redis = redis
        self._local = LocalLock()
        self._redis_lock: RedisLock | None = None

    def _impl(self) -> Lock:
        client = self._redis.client()
        if client is None:
            return self._local
        if self._redis_lock is None or self._redis_lock._client is not client:
            self._redis_lock = RedisLock(client, prefix=self._redis.key("lock", ""))
        return self._redis_lock

    async def acquire(self, name: str, ttl: float, wait: float = 0.0) -> str | None:
        try:
            return await self._impl().acquire(name, ttl, wait)
        except (RedisError, OSError) as exc:
            self._redis.mark_down(exc)
            return await self._local.acquire(name, ttl, wait)

    async def extend(self, name: str, token: str, ttl: float) -> bool:
        try:
            return await self._impl().extend(name, token, ttl)
        except (RedisError, OSError) as exc:
            self._redis.mark_down(exc)
            return False

    async def release(self, name: str, token: str) -> bool:
        try:
            return await self._impl().release(name, token)
        except (RedisError, OSError) as exc:
            self._redis.mark_down(exc)
            return False

    @asynccontextmanager
    async def lock(self, name: str, ttl: float, wait: float = 0.0) -> AsyncIterator[bool]:
        token = await self.acquire(name, ttl, wait)
        try:
            yield token is not None
        finally:
            if token is not None:
                await self.release(name, token)
