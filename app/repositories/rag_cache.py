"""Redis-backed state of the RAG pipeline, with in-process fallbacks when Redis is off or down:
the knowledge index version and the exact answer cache."""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from app.core.redis import RedisManager, as_text


class IndexVersionStore:
    """A counter bumped on every document change; cache keys carry it, so a bump invalidates."""

    def __init__(self, redis: RedisManager) -> None:
        self.redis = redis
        self._local = 0

    @property
    def _key(self) -> str:
        return self.redis.key("rag", "index_version")

    async def current(self) -> int:
        client = self.redis.client()
        if client is not None:
            try:
                value = await client.get(self._key)
                return int(value or 0)
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        return self._local

    async def bump(self) -> int:
        self._local += 1
        client = self.redis.client()
        if client is not None:
            try:
                return int(await client.incr(self._key))
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        return self._local


class AnswerCache:
    """Exact answer cache: key → JSON payload with a TTL."""

    def __init__(self, redis: RedisManager, max_local_entries: int = 2048) -> None:
        self.redis = redis
        self._local: dict[str, tuple[float, str]] = {}
        self._max_local = max_local_entries

    async def get(self, key: str) -> str | None:
        client = self.redis.client()
        if client is not None:
            try:
                value = await client.get(self.redis.key("rag", "answer", key))
                return as_text(value) if value is not None else None
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        entry = self._local.get(key)
        if entry is None:
            return None
        expires_at, payload = entry
        if expires_at < time.monotonic():
            self._local.pop(key, None)
            return None
        return payload

    async def put(self, key: str, payload: str, ttl: int) -> None:
        if ttl <= 0:
            return
        client = self.redis.client()
        if client is not None:
            try:
                await client.set(self.redis.key("rag", "answer", key), payload, ex=ttl)
                return
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        if len(self._local) >= self._max_local:
            self._local.pop(next(iter(self._local)))  # oldest insertion first
        self._local[key] = (time.monotonic() + ttl, payload)

    def clear_local(self) -> None:
        self._local.clear()
