"""The distributed lock against real Redis (when configured) and the in-process fallback."""

from __future__ import annotations

import asyncio

import pytest
from redis import asyncio as aioredis

from app.core.lock import LocalLock, LockService, RedisLock
from app.core.redis import RedisManager
from app.core.settings import RedisSettings
from tests.conftest import REDIS_PREFIX


@pytest.fixture
async def lock_impls(redis_url: str):
    """The Redis lock (if Redis is configured) and the local one, both tested the same way."""
    impls: list[tuple[str, object]] = [("local", LocalLock())]
    client = None
    if redis_url:
        client = aioredis.from_url(redis_url)
        impls.append(("redis", RedisLock(client, prefix=REDIS_PREFIX + "locktest:")))
    yield impls
    if client is not None:
        keys = [k async for k in client.scan_iter(match=REDIS_PREFIX + "locktest:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_second_contender_is_refused_until_release(lock_impls):
    for _, lock in lock_impls:
        first = await lock.acquire("job", ttl=5)
        assert first is not None
        assert await lock.acquire("job", ttl=5) is None
        assert await lock.release("job", first) is True
        assert await lock.acquire("job", ttl=5) is not None


async def test_lock_expires_after_ttl(lock_impls):
    for _, lock in lock_impls:
        token = await lock.acquire("short", ttl=0.15)
        assert token is not None
        await asyncio.sleep(0.25)
        second = await lock.acquire("short", ttl=5)
        assert second is not None and second != token
        # The expired owner can no longer release or extend someone else's lock.
        assert await lock.release("short", token) is False
        assert await lock.extend("short", token, 5) is False


async def test_extend_keeps_the_lock_alive(lock_impls):
    for _, lock in lock_impls:
        token = await lock.acquire("ext", ttl=0.2)
        assert await lock.extend("ext", token, 1.0) is True
        await asyncio.sleep(0.3)
        assert await lock.acquire("ext", ttl=1) is None


async def test_release_by_non_owner_is_refused(lock_impls):
    for _, lock in lock_impls:
        token = await lock.acquire("owned", ttl=5)
        assert await lock.release("owned", "not-the-token") is False
        assert await lock.acquire("owned", ttl=5) is None
        assert await lock.release("owned", token) is True


async def test_bounded_wait_acquires_once_holder_releases(lock_impls):
    for _, lock in lock_impls:
        token = await lock.acquire("wait", ttl=5)

        async def release_soon(lock=lock, token=token) -> None:
            await asyncio.sleep(0.1)
            await lock.release("wait", token)

        task = asyncio.create_task(release_soon())
        got = await lock.acquire("wait", ttl=5, wait=2)
        await task
        assert got is not None
        # And a bounded wait on a held lock gives up.
        assert await lock.acquire("wait", ttl=5, wait=0.1) is None


async def test_lock_service_context_manager_with_two_contenders(redis_url: str):
    manager = RedisManager(RedisSettings(url=redis_url, key_prefix=REDIS_PREFIX + "svc:"))
    await manager.start()
    try:
        locks = LockService(manager)
        async with (
            locks.lock("dispatch", ttl=5) as first,
            locks.lock("dispatch", ttl=5) as second,
        ):
            assert first is True and second is False
        async with locks.lock("dispatch", ttl=5) as again:
            assert again is True
    finally:
        await manager.stop()
