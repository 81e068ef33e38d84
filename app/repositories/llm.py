"""LLM router state in Redis (shared by every app process), in-process when Redis is off:
quota cooldowns (a key per provider:model holding reason and end, TTL = cooldown) and usage
counters."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from redis.exceptions import RedisError

from app.core.redis import RedisManager, as_text
from app.schemas.rag import CooldownReason


@dataclass(frozen=True, slots=True)
class Cooldown:
    """One model's cooldown: why, and until when (epoch seconds)."""

    reason: CooldownReason
    until: float
    detail: str | None = None

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)

    @property
    def remaining_secs(self) -> float:
        return round(self.remaining(time.time()), 1)

    def encode(self) -> str:
        return json.dumps({"reason": self.reason.value, "until": self.until, "detail": self.detail})

    @classmethod
    def decode(cls, raw: bytes | str) -> Cooldown | None:
        """The stored form; None when it cannot be read (the TTL still holds the model back)."""
        try:
            data = json.loads(raw)
            return cls(CooldownReason(data["reason"]), float(data["until"]), data.get("detail"))
        except (ValueError, TypeError, KeyError):
            return None


class CooldownStore:
    """Which models are cooling down, why, and until when."""

    def __init__(self, redis: RedisManager) -> None:
        self.redis = redis
        self._local: dict[str, Cooldown] = {}

    def _key(self, model_key: str) -> str:
        return self.redis.key("llm", "cooldown", model_key)

    async def cool_down(
        self,
        model_key: str,
        seconds: float,
        reason: CooldownReason = CooldownReason.quota_exhausted,
        detail: str | None = None,
    ) -> None:
        if seconds <= 0:
            return
        cooldown = Cooldown(reason, time.time() + seconds, detail)
        # Kept locally too: if Redis drops out, this process still honours the cooldown.
        current = self._local.get(model_key)
        if current is None or current.until < cooldown.until:
            self._local[model_key] = cooldown
        client = self.redis.client()
        if client is None:
            return
        try:
            await client.set(
                self._key(model_key), cooldown.encode(), px=max(1, int(seconds * 1000))
            )
        except (RedisError, OSError) as exc:
            self.redis.mark_down(exc)

    def _local_cooldown(self, model_key: str, now: float) -> Cooldown | None:
        cooldown = self._local.get(model_key)
        if cooldown is None:
            return None
        if cooldown.until <= now:
            self._local.pop(model_key, None)
            return None
        return cooldown

    def _local_remaining(self, model_key: str, now: float) -> float:
        cooldown = self._local_cooldown(model_key, now)
        return cooldown.remaining(now) if cooldown else 0.0

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
        now = time.time()
        return {k: c.remaining(now) if c else 0.0 for k, c in (await self.all(model_keys)).items()}

    async def all(self, model_keys: Iterable[str]) -> dict[str, Cooldown | None]:
        """Each model's current cooldown (None when it may be called), shared ones first."""
        keys = list(model_keys)
        now = time.time()
        result = {k: self._local_cooldown(k, now) for k in keys}
        client = self.redis.client()
        if client is None or not keys:
            return result
        try:
            async with client.pipeline(transaction=False) as pipe:
                for k in keys:
                    pipe.get(self._key(k))
                    pipe.pttl(self._key(k))
                replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            self.redis.mark_down(exc)
            return result
        for index, k in enumerate(keys):
            raw, pttl = replies[2 * index], replies[2 * index + 1]
            if not pttl or pttl <= 0:
                continue
            shared = (raw and Cooldown.decode(raw)) or Cooldown(
                CooldownReason.quota_exhausted, now + pttl / 1000
            )
            local = result[k]
            if local is None or local.until < shared.until:
                result[k] = shared
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
                values.update({as_text(k): int(v) for k, v in raw.items()})
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        return dict(values)

    def clear_local(self) -> None:
        self._local.clear()
