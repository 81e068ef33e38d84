"""LLM router state in Redis (shared by every app process), in-process when Redis is off:
quota cooldowns (a key per provider:model with TTL = cooldown) and usage counters."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from redis.exceptions import RedisError

from app.core.redis import RedisManager


class CooldownStore:
    """Which models are cooling down and until when."""

    def __init__(self, redis: RedisManager) -> None:
        self.redis = redis
        self._local: dict[str, float] = {}  # key → until (epoch seconds)

    def _key(self, model_key: str) -> str:
        return self.redis.key("llm", "cooldown", model_key)

    async def cool_down(self, model_key: str, seconds: float) -> None:
        if seconds <= 0:
            return
        until = time.time() + seconds
        # Kept locally too: if Redis drops out, this process still honours the cooldown.
        self._local[model_key] = max(until, self._local.get(model_key, 0.0))
        client = self.redis.client()
        if client is None:
            return
        try:
            await client.set(self._key(model_key), f"{until:.3f}", px=max(1, int(seconds * 1000)))
        except (RedisError, OSError) as exc:
            self.redis.mark_down(exc)

    def _local_remaining(self, model_key: str, now: float) -> float:
        until = self._local.get(model_key)
        if until is None:
            return 0.0
        if until <= now:
            self._local.pop(model_key, None)
            return 0.0
        return until - now

    async def remaining(self, model_key: str) -> float:
        """Seconds left in this model's cooldown (0 when it may be called)."""
        now = time.time()
        local = self._local_remaining(model_key, now)
        client = self.redis.client()
        if client is None:
            return local
        try:
            pttl = await client.pttl(self._key(model_key))
        except (RedisError, OSError) as exc:
            self.redis.mark_down(exc)
            return local
        return max(local, pttl / 1000 if pttl and pttl > 0 else 0.0)

    async def all_remaining(self, model_keys: Iterable[str]) -> dict[str, float]:
        keys = list(model_keys)
        now = time.time()
        result = {k: self._local_remaining(k, now) for k in keys}
        client = self.redis.client()
        if client is None or not keys:
            return result
        try:
            async with client.pipeline(transaction=False) as pipe:
                for k in keys:
                    pipe.pttl(self._key(k))
                ttls = await pipe.execute()
        except (RedisError, OSError) as exc:
            self.redis.mark_down(exc)
            return result
        for k, pttl in zip(keys, ttls, strict=True):
            if pttl and pttl > 0:
                result[k] = max(result[k], pttl / 1000)
        return result

    def clear_local(self) -> None:
        self._local.clear()


class LLMStatsStore:
    """Usage counters per provider:model (and a few global ones) for the stats dashboard."""

    def __init__(self, redis: RedisManager) -> None:
        self.redis = redis
        self._local: Counter[str] = Counter()

    @property
    def _key(self) -> str:
        return self.redis.key("llm", "stats")

    async def add(self, counts: dict[str, int]) -> None:
        """Add to counters named `scope|field` (scope: `provider:model` or `rag`)."""
        counts = {k: v for k, v in counts.items() if v}
        if not counts:
            return
        client = self.redis.client()
        if client is not None:
            try:
                async with client.pipeline(transaction=False) as pipe:
                    for field, value in counts.items():
                        pipe.hincrby(self._key, field, value)
                    await pipe.execute()
                return
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        self._local.update(counts)

    async def snapshot(self) -> dict[str, int]:
        values: Counter[str] = Counter(self._local)
        client = self.redis.client()
        if client is not None:
            try:
                raw = await client.hgetall(self._key)
                values.update({k.decode(): int(v) for k, v in raw.items()})
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        return dict(values)

    def clear_local(self) -> None:
        self._local.clear()
