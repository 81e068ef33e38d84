"""Prometheus exposition (single- or multi-process) and the sampler for state gauges.

Counters and histograms are updated where things happen; gauges that describe state
(database connections checked out, Redis up) are sampled by `GaugeSampler` every few
seconds in each worker process, and once more just before a scrape.
"""

from __future__ import annotations

import asyncio
import os

from loguru import logger
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from app.core.database import Database
from app.core.metrics import DB_POOL_IN_USE, REDIS_UP
from app.core.redis import RedisManager
from app.core.tasks import cancel_task

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
__all__ = ["CONTENT_TYPE_LATEST", "GaugeSampler", "render_metrics"]


def render_metrics() -> bytes:
    """The text exposition; aggregates every worker's files in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class GaugeSampler:
    """Samples pool usage and Redis state into their gauges (a lifecycle component)."""

    def __init__(self, database: Database, redis: RedisManager, interval_secs: float = 5.0) -> None:
        self.database = database
        self.redis = redis
        self.interval = interval_secs
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        stats = self.database.pool_stats()
        DB_POOL_IN_USE.set(stats.get("checkedout", 0))
        REDIS_UP.set(1 if self.redis.is_up else 0)

    async def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._loop(), name="metrics-sampler")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.sample()
            except Exception as exc:  # a gauge must never take the app down
                logger.debug("metrics sample failed: {}", type(exc).__name__)
