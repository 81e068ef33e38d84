"""State gauges for dashboards and alert rules that need a database or service read: sources
online/offline and last seen, alert deliveries waiting, and LLM cooldowns.

Sampled every `interval_secs` in each process and once more before a scrape (bounded by a
timeout, so a slow database never stalls `/metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC

from loguru import logger

from app.core.metrics import (
    ALERT_OLDEST_PENDING,
    ALERT_PENDING,
    SOURCE_LAST_SEEN,
    SOURCES,
)
from app.core.tasks import cancel_task
from app.services.alerts import AlertDispatcher
from app.services.events import EventService
from app.services.llm_router import LLMRouter

ALERT_CHANNEL = "kakao"
# The label every source past METRICS_MAX_SOURCE_SERIES shares (its value: the latest of them).
OTHER_SOURCES = "other"


class OpsMetricsSampler:
    """Reads sources, the alert outbox and LLM cooldowns into their gauges (a lifecycle component)."""

    def __init__(
        self,
        events: EventService,
        dispatcher: AlertDispatcher,
        router: LLMRouter,
        interval_secs: float = 15.0,
        timeout_secs: float = 2.0,
        max_source_series: int = 100,
    ) -> None:
        self.events = events
        self.dispatcher = dispatcher
        self.router = router
        self.interval = interval_secs
        self.timeout = timeout_secs
        self.max_source_series = max_source_series
        self._task: asyncio.Task[None] | None = None
        self._known_sources: set[str] = set()

    async def sample(self) -> None:
        """One reading of every gauge; failures are logged, never raised to a scrape."""
        try:
            async with asyncio.timeout(self.timeout):
                await self._sample_sources()
                await self._sample_alerts()
                await self.router.status()  # sets sentinel_llm_cooldown_seconds per model
        except Exception as exc:  # a gauge must never take a scrape or the app down
            logger.debug("ops metrics sample failed: {}", type(exc).__name__)

    async def _sample_sources(self) -> None:
        sources = await self.events.sources()
        online = sum(1 for s in sources if s.online)
        SOURCES.labels("online").set(online)
        SOURCES.labels("offline").set(len(sources) - online)
        # Bounded series: the most recently seen sources keep their own label, the rest share
        # `other` (anyone with the shared token can invent source ids; /metrics must not grow).
        ranked = sorted(sources, key=lambda s: s.last_seen, reverse=True)
        own, rest = ranked[: self.max_source_series], ranked[self.max_source_series :]
        seen = set()
        for s in own:
            seen.add(s.source_id)
            SOURCE_LAST_SEEN.labels(s.source_id).set(s.last_seen.astimezone(UTC).timestamp())
        if rest:
            seen.add(OTHER_SOURCES)
            SOURCE_LAST_SEEN.labels(OTHER_SOURCES).set(
                rest[0].last_seen.astimezone(UTC).timestamp()
            )
        for gone in self._known_sources - seen:  # deleted sources stop being reported
            with contextlib.suppress(KeyError):
                SOURCE_LAST_SEEN.remove(gone)
        self._known_sources = seen

    async def _sample_alerts(self) -> None:
        health = await self.dispatcher.health()
        ALERT_PENDING.labels(ALERT_CHANNEL).set(health.pending)
        ALERT_OLDEST_PENDING.labels(ALERT_CHANNEL).set(health.oldest_pending_age_secs or 0)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ops-metrics-sampler")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.interval)
