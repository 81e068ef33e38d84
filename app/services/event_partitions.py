"""Keeps the daily partitions of `events` ahead of the clock, and drops expired ones.

A lifecycle component: at start-up and every hour, each web process makes sure the partitions
from yesterday to `PARTITIONS_AHEAD_DAYS` days ahead exist (an advisory lock makes the processes
take turns; whoever comes second finds them made), and forgets the event ids older than
`EVENT_DEDUP_DAYS`. Retention calls `drop_expired`, which removes
whole days instead of deleting their rows. On SQLite (no partitions) both do nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from loguru import logger

from app.core.database import Database
from app.core.settings import EventSettings
from app.core.tasks import cancel_task
from app.models.base import utcnow
from app.repositories.partitions import EventPartitions, day_start

PARTITIONS_AHEAD_DAYS = 7
ENSURE_EVERY_SECS = 3600.0


@dataclass(slots=True)
class DroppedPartitions:
    """What `drop_expired` removed: whole days, with their rows counted before the drop."""

    days: list[date]
    events: int = 0
    heartbeats: int = 0


class EventPartitionService:
    """Creates `events` partitions ahead of time and drops the expired ones (PostgreSQL)."""

    def __init__(self, database: Database, settings: EventSettings | None = None) -> None:
        self.db = database
        self.dedup_days = (settings or EventSettings()).dedup_days
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.db.dialect == "postgresql"

    async def start(self) -> None:
        if not self.enabled:
            return
        await self._tend()
        self._task = asyncio.create_task(self._loop(), name="event-partitions")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(ENSURE_EVERY_SECS)
            await self._tend()

    async def _tend(self) -> None:
        now = utcnow()
        try:
            await self.ensure(now)
        except Exception as exc:  # the default partition takes the rows meanwhile; next hour
            logger.warning("event partitions not created: {}", type(exc).__name__)
        try:
            await self.prune_ids(now)
        except Exception as exc:  # next hour
            logger.warning("event ids not pruned: {}", type(exc).__name__)

    async def prune_ids(self, now: datetime) -> int:
        """Forget the event ids received more than `EVENT_DEDUP_DAYS` before `now`."""
        async with self.db.engine.begin() as conn:
            partitions = EventPartitions(conn)
            if not await partitions.is_partitioned():
                return 0
            return await partitions.prune_ids(now - timedelta(days=self.dedup_days))

    async def ensure(self, now: datetime, first: date | None = None) -> list[date]:
        """Create the missing daily partitions from `first` (default: yesterday) to
        `PARTITIONS_AHEAD_DAYS` after `now`'s day; returns the days created."""
        today = now.date()
        start = first or today - timedelta(days=1)
        wanted = [
            start + timedelta(days=i)
            for i in range((today - start).days + PARTITIONS_AHEAD_DAYS + 1)
        ]
        created: list[date] = []
        async with self.db.engine.begin() as conn:
            partitions = EventPartitions(conn)
            if not await partitions.is_partitioned():
                return created
            have = set(await partitions.days())
            missing = [d for d in wanted if d not in have]
            if not missing:
                return created
            await partitions.lock()
            have = set(await partitions.days())  # another process may have made them meanwhile
            for day in missing:
                if day not in have:
                    await partitions.create(day)
                    created.append(day)
        if created:
            logger.info(
                "event partitions created: {} day(s), {} to {}",
                len(created),
                created[0],
                created[-1],
            )
        return created

    def whole_days(self, cutoff: datetime) -> datetime:
        """The cutoff retention applies to events: on PostgreSQL rounded down to the start of its
        UTC day, so expired events go as whole partitions; unchanged on SQLite."""
        return day_start(cutoff.astimezone(UTC).date()) if self.enabled else cutoff

    async def drop_expired(
        self, events_cutoff: datetime | None, heartbeats_cutoff: datetime | None
    ) -> DroppedPartitions:
        """Drop every day whose rows are all past their window: days ending at or before
        `events_cutoff`, unless the day holds heartbeats that `heartbeats_cutoff` (None: kept
        forever) still keeps. Rows of the remaining days are left to the row-wise step."""
        result = DroppedPartitions(days=[])
        if not self.enabled or events_cutoff is None:
            return result
        async with self.db.engine.connect() as conn:
            partitions = EventPartitions(conn)
            if not await partitions.is_partitioned():
                return result
            days = await partitions.days()
            await conn.rollback()
        for day in days:
            end = day_start(day + timedelta(days=1))
            if end > events_cutoff:
                break
            heartbeats_expired = heartbeats_cutoff is not None and end <= heartbeats_cutoff
            # One short transaction per day: ingest waits for the parent's lock only briefly.
            try:
                async with self.db.engine.begin() as conn:
                    partitions = EventPartitions(conn)
                    await partitions.lock()
                    rows = await partitions.rows(day)
                    if rows.heartbeats and not heartbeats_expired:
                        continue  # kept for its heartbeats; its events go row by row
                    await partitions.drop(day)
            except Exception as exc:  # a lock wait past its timeout, or no right to drop
                logger.warning(
                    "retention: event partition {} not dropped ({}); its rows go one by one",
                    day,
                    type(exc).__name__,
                )
                break
            result.days.append(day)
            result.events += rows.others
            result.heartbeats += rows.heartbeats
        if result.days:
            logger.info(
                "retention: {} event partition(s) dropped ({} to {})",
                len(result.days),
                result.days[0],
                result.days[-1],
            )
        return result
