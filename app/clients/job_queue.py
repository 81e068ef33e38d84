"""The task queue: taskiq on a Redis stream, or taskiq's in-memory broker without Redis.

The queue message carries only a job id; the job record (state, progress, attempts) lives in
the database, so every process answers `GET /api/v1/jobs/{id}` the same way. Both brokers run
the same task function (`JobRunner.run`), so the embedded default and a deployment with
`sentinel worker` processes share one code path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger
from redis.exceptions import RedisError
from taskiq import AsyncBroker, InMemoryBroker
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from app.core.redis import RedisManager
from app.core.settings import JobSettings, RedisSettings

TASK_NAME = "sentinel.run_job"
HEARTBEAT_SECS = 5.0

RunJob = Callable[[uuid.UUID, str], Awaitable[None]]


@dataclass(frozen=True)
class BrokerBacklog:
    """Messages in the Redis stream not yet handed to a worker, and handed but unacknowledged."""

    waiting: int
    unacknowledged: int


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobQueue:
    """One taskiq broker per process, with the one `sentinel.run_job` task bound to a runner."""

    def __init__(
        self, settings: JobSettings, redis_settings: RedisSettings, redis: RedisManager
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.in_process = not redis_settings.enabled
        self.stream = f"{redis_settings.key_prefix}{settings.queue_name}"
        self.group = f"{self.stream}:workers"
        self.broker: AsyncBroker
        if self.in_process:
            self.broker = InMemoryBroker(max_async_tasks=settings.worker_concurrency)
        else:
            self.broker = RedisStreamBroker(
                redis_settings.url,
                queue_name=self.stream,
                consumer_group_name=self.group,
                consumer_name=worker_name(),
                # A group created after messages arrived (Redis flushed) still gets them; a
                # message whose job already finished is dropped by the claim.
                consumer_id="0",
                maxlen=100_000,
                # A message whose worker died is handed to another after the job lease.
                idle_timeout=int(settings.lease_secs * 1000),
                unacknowledged_lock_timeout=30,
                xread_block=1000,
            )
        self.retry_secs = redis_settings.retry_interval_secs
        self._task: Any = None
        self._started = False
        self._retry_start: asyncio.Task[None] | None = None

    def bind(self, run: RunJob) -> None:
        """Register the task function; the same in the web process and in workers."""

        async def run_job(job_id: str) -> None:
            await run(uuid.UUID(job_id), worker_name())

        self._task = self.broker.register_task(
            run_job, task_name=TASK_NAME, ack_type=AcknowledgeType.WHEN_EXECUTED.value
        )

    async def start(self) -> None:
        # Redis down at start must not stop the API from serving: keep trying in the
        # background; jobs submitted meanwhile stay queued in the database.
        try:
            await self.broker.startup()
        except Exception as exc:
            logger.warning(
                "job queue unavailable at start ({}); retrying every {} s",
                type(exc).__name__,
                self.retry_secs,
            )
            self._retry_start = asyncio.create_task(self._start_later(), name="job-queue-start")
            return
        self._started = True

    async def _start_later(self) -> None:
        while not self._started:
            await asyncio.sleep(max(self.retry_secs, 0.1))
            try:
                await self.broker.startup()
            except Exception as exc:
                logger.debug("job queue still unavailable ({})", type(exc).__name__)
                continue
            self._started = True
            logger.info("job queue connected")

    async def stop(self) -> None:
        if self._retry_start is not None:
            self._retry_start.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._retry_start
            self._retry_start = None
        if self._started:
            self._started = False
            await self.broker.shutdown()

    async def enqueue(self, job_id: uuid.UUID) -> None:
        assert self._task is not None, "JobQueue.bind() was not called"
        await self._task.kiq(str(job_id))

    # -- worker side ---------------------------------------------------------------------

    @property
    def is_worker(self) -> bool:
        return bool(self.broker.is_worker_process)

    def mark_worker(self) -> None:
        """This process consumes jobs (call before start)."""
        self.broker.is_worker_process = True

    async def work(self, stop: asyncio.Event) -> None:
        """Consume jobs until `stop` is set (the `sentinel worker` loop)."""
        self.mark_worker()
        beat = asyncio.create_task(self._heartbeat(stop), name="job-worker-heartbeat")
        try:
            while not stop.is_set():
                receiver = Receiver(
                    self.broker,
                    max_async_tasks=self.settings.worker_concurrency,
                    run_startup=False,
                    ack_type=AcknowledgeType.WHEN_EXECUTED,
                    wait_tasks_timeout=self.settings.lease_secs,
                )
                try:
                    await receiver.listen(stop)
                except Exception as exc:
                    # Redis restarted, flushed or unreachable: the stream or its consumer
                    # group may be gone. Wait, declare the group again and keep consuming.
                    logger.warning(
                        "job consumer lost the queue ({}); retrying in {} s",
                        type(exc).__name__,
                        self.retry_secs,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.retry_secs)
                    with contextlib.suppress(Exception):
                        await self.broker._declare_consumer_group()  # type: ignore[attr-defined]
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            client = self.redis.client()
            if client is not None:
                with contextlib.suppress(RedisError):
                    await client.delete(self._worker_key(worker_name()))

    def _worker_key(self, name: str) -> str:
        return self.redis.key(self.settings.queue_name, "worker", name)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Announce this worker (a key with a TTL) so `/admin/queues` can count workers."""
        name = worker_name()
        while not stop.is_set():
            client = self.redis.client()
            if client is not None:
                try:
                    await client.set(
                        self._worker_key(name),
                        json.dumps({"name": name}),
                        ex=int(HEARTBEAT_SECS * 3),
                    )
                except RedisError as exc:
                    logger.warning("job worker heartbeat failed: {}", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT_SECS)

    # -- status --------------------------------------------------------------------------

    async def workers(self) -> int:
        """Live `sentinel worker` processes (the web process itself when in-process)."""
        if self.in_process:
            return 1
        client = self.redis.client()
        if client is None:
            return 0
        pattern = self._worker_key("*")
        return len([k async for k in client.scan_iter(match=pattern, count=200)])

    async def backlog(self) -> BrokerBacklog | None:
        if self.in_process:
            return None
        client = self.redis.client()
        if client is None:
            return None
        try:
            groups = await client.xinfo_groups(self.stream)
        except RedisError:
            return BrokerBacklog(waiting=0, unacknowledged=0)
        for group in groups:
            name = group.get("name")
            if isinstance(name, bytes):
                name = name.decode()
            if name == self.group:
                return BrokerBacklog(
                    waiting=int(group.get("lag") or 0),
                    unacknowledged=int(group.get("pending") or 0),
                )
        return BrokerBacklog(waiting=0, unacknowledged=0)
