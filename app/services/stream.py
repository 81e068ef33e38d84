"""Live updates for `GET /api/v1/events/stream`: Redis pub/sub across processes, in-process otherwise.

Publishers call `publish(kind, data)`. With Redis up the message goes to one channel and every
process (this one included) fans it out to its local subscribers from its listener task; with
Redis off or failing it goes straight to this process's subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from enum import StrEnum
from typing import Any

from loguru import logger
from redis.exceptions import RedisError

from app.core.errors import RateLimited
from app.core.redis import RedisManager
from app.core.security import Role

QUEUE_SIZE = 1000
_EVENT_PREFIX = '{"type":"event","data":'


class StreamPool(StrEnum):
    """Which share of the live-stream slots a caller draws from."""

    VIEWERS = "viewers"  # at most STREAM_VIEWER_SHARE of the slots, together
    STAFF = "staff"  # operators and the service: all but the admins' reserve
    ADMINS = "admins"  # everything, the STREAM_ADMIN_RESERVED slots included

    @classmethod
    def of(cls, role: Role | None) -> StreamPool:
        """The pool of a caller's role (anonymous callers, in development, count as viewers)."""
        if role is Role.ADMIN:
            return cls.ADMINS
        if role in (Role.OPERATOR, Role.SERVICE):
            return cls.STAFF
        return cls.VIEWERS


class EventStream:
    """Fan-out of events, episode closes and alert status changes to SSE subscribers."""

    def __init__(
        self,
        redis: RedisManager,
        max_subscribers: int = 200,
        max_per_principal: int = 5,
        viewer_share: float = 0.6,
        admin_reserved: int = 10,
    ) -> None:
        self.redis = redis
        self.max_subscribers = max_subscribers
        self.max_per_principal = max_per_principal
        # At least one slot stays open to non-admins, however small STREAM_MAX_SUBSCRIBERS is.
        self.admin_reserved = min(admin_reserved, max_subscribers - 1)
        self.viewer_max = min(
            max(1, int(max_subscribers * viewer_share)), max_subscribers - self.admin_reserved
        )
        self._per_key: dict[str, int] = {}
        self._per_pool: dict[StreamPool, int] = dict.fromkeys(StreamPool, 0)
        self.channel = redis.key("stream", "events")
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._stopping = False

    @property
    def listening(self) -> bool:
        """True while this process receives the Redis channel (or always, without Redis)."""
        return self._listening.is_set() or not self.redis.enabled

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        self._stopping = False
        self._listening = asyncio.Event()
        if self.redis.enabled:
            self._task = asyncio.create_task(self._listen(), name="event-stream-listener")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            # redis-py can swallow a cancellation that lands inside get_message(); the flag
            # ends the loop within one poll and the wait is bounded so shutdown never hangs.
            await asyncio.wait({self._task}, timeout=3)
            self._task = None

    async def publish(self, kind: str, data: dict[str, Any]) -> None:
        await self.publish_many([(kind, data)])

    async def publish_many(
        self, items: list[tuple[str, dict[str, Any]]], encoded_events: Sequence[str] = ()
    ) -> None:
        """Publish messages in order, as one Redis message.

        `encoded_events` are `event` messages whose data is already JSON (the ingest path
        encodes each event once); they go first, before `items`.
        """
        messages = [_EVENT_PREFIX + data + "}" for data in encoded_events]
        messages += [
            json.dumps({"type": kind, "data": data}, separators=(",", ":"), default=str)
            for kind, data in items
        ]
        if not messages:
            return
        client = self.redis.client()
        if client is not None and self._listening.is_set():
            try:
                # One Redis message per group, lines of one JSON message each (JSON text never
                # holds a raw newline): each replica's listener handles a group at once.
                await client.publish(self.channel, "\n".join(messages))
                return
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)
        for message in messages:
            self._fanout(message)

    def _fanout(self, message: str) -> None:
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):  # a stalled client drops, never blocks
                queue.put_nowait(message)

    def check_capacity(self, key: str, role: Role | None = None) -> None:
        """429 when this process has no slot for a caller with `role` and credential `key`.

        Per process, like the subscriber set itself: viewers together hold at most their
        share, nobody but admins takes the admins' reserve, one credential at most
        STREAM_MAX_PER_PRINCIPAL. So a crowd of viewers cannot lock operators or admins out.
        """
        total = sum(self._per_pool.values())
        if total >= self.max_subscribers:
            raise RateLimited(
                f"The live stream is full ({self.max_subscribers} listeners, "
                "STREAM_MAX_SUBSCRIBERS); retry in a minute",
                headers={"Retry-After": "60"},
            )
        pool = StreamPool.of(role)
        if pool is not StreamPool.ADMINS and total >= self.max_subscribers - self.admin_reserved:
            raise RateLimited(
                f"The last {self.admin_reserved} live-stream listeners are kept for admins "
                "(STREAM_ADMIN_RESERVED); retry in a minute",
                headers={"Retry-After": "60"},
            )
        if pool is StreamPool.VIEWERS and self._per_pool[pool] >= self.viewer_max:
            raise RateLimited(
                f"Viewers already hold their share of the live stream ({self.viewer_max} "
                "listeners, STREAM_VIEWER_SHARE); retry in a minute",
                headers={"Retry-After": "60"},
            )
        if self._per_key.get(key, 0) >= self.max_per_principal:
            raise RateLimited(
                f"You already have {self.max_per_principal} live streams open "
                "(STREAM_MAX_PER_PRINCIPAL); close one and retry",
                headers={"Retry-After": "5"},
            )

    def reserve(self, key: str, role: Role | None = None) -> StreamSlot:
        """Check and take a slot at once (no await in between), before the response starts:
        a burst of requests cannot all pass the check before any of them subscribes."""
        self.check_capacity(key, role)
        return self._take(key, role)

    def _take(self, key: str, role: Role | None) -> StreamSlot:
        pool = StreamPool.of(role)
        self._per_key[key] = self._per_key.get(key, 0) + 1
        self._per_pool[pool] += 1
        return StreamSlot(self, key, pool)

    def _give_back(self, key: str, pool: StreamPool) -> None:
        self._per_pool[pool] -= 1
        left = self._per_key.get(key, 1) - 1
        if left > 0:
            self._per_key[key] = left
        else:
            self._per_key.pop(key, None)

    def pool_count(self, pool: StreamPool) -> int:
        """Slots held in `pool` (this process)."""
        return self._per_pool[pool]

    @contextlib.asynccontextmanager
    async def subscribe(
        self, key: str = "", role: Role | None = None, slot: StreamSlot | None = None
    ) -> AsyncIterator[asyncio.Queue[str]]:
        """Receive messages while inside; `slot` (from `reserve`) is given back on leaving."""
        slot = slot or self._take(key, role)
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
            slot.release()

    async def _listen(self) -> None:
        while not self._stopping:
            client = self.redis.client()
            if client is None:
                self._listening.clear()
                await asyncio.sleep(0.2)
                continue
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._listening.set()
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        text = data.decode() if isinstance(data, bytes) else str(data)
                        for line in text.split("\n"):
                            self._fanout(line)
            except (RedisError, OSError) as exc:
                self._listening.clear()
                self.redis.mark_down(exc)
                logger.info("event stream lost Redis; serving in-process until it returns")
                await asyncio.sleep(0.2)
            finally:
                self._listening.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


class StreamSlot:
    """One reserved live-stream slot; `release` is idempotent."""

    __slots__ = ("_key", "_pool", "_stream")

    def __init__(self, stream: EventStream, key: str, pool: StreamPool) -> None:
        self._stream: EventStream | None = stream
        self._key = key
        self._pool = pool

    def release(self) -> None:
        if self._stream is not None:
            self._stream._give_back(self._key, self._pool)
            self._stream = None
