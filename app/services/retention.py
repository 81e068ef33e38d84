"""Retention: delete what is older than its window, in small batches, one process at a time.

Windows (days, 0 = keep forever): `RETENTION_EVENTS_DAYS` (events other than heartbeats, and the
rotated JSONL event log files), `RETENTION_HEARTBEATS_DAYS`, `RETENTION_EPISODES_DAYS` (closed
episodes with their alerts, and their summaries in the vector store),
`RETENTION_CONVERSATIONS_DAYS` (conversations without a newer turn) and
`RETENTION_LLM_USAGE_DAYS` (the per-day usage ledger).

Each batch is its own short transaction, so ingest never waits behind a long delete. On
PostgreSQL, events are kept in daily partitions and expire a whole UTC day at a time (a row
outlives `RETENTION_EVENTS_DAYS` by less than a day): whole days past the window are dropped
(`EventPartitionService.drop_expired`), and only rows outside them (the default partition, a
day kept for its heartbeats) are deleted row by row.
`RetentionService.run(dry_run)` is the one entry point (the CLI and the `retention` job call it;
`RetentionScheduler` queues that job once per interval across all replicas); a lock makes a
second concurrent run return at once with `ran=False`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger
from prometheus_client import Gauge

from app.core.database import Database
from app.core.lock import LockService
from app.core.metrics import RETENTION_DELETED, RETENTION_LAST_RUN
from app.core.settings import RetentionSettings
from app.core.tasks import cancel_task
from app.models.base import utcnow
from app.repositories.jobs import JobRepository
from app.repositories.retention import RetentionRepository
from app.services.event_log import EventLog
from app.services.event_partitions import DroppedPartitions, EventPartitionService

if TYPE_CHECKING:
    # Annotations only: importing them here would cost the CLI's `retention` ~1 s (numpy, httpx).
    from app.clients.vector_store import VectorStore

RUN_LOCK = "retention:run"
SCHEDULE_LOCK = "retention:schedule"
LOCK_TTL_SECS = 300.0


class RetentionKind(StrEnum):
    """What a retention step removes."""

    events = "events"
    heartbeats = "heartbeats"
    episodes = "episodes"
    episode_summaries = "episode_summaries"
    labelled_episodes_kept = "labelled_episodes_kept"  # expired, kept: operators labelled them
    conversations = "conversations"
    llm_usage = "llm_usage"
    event_log_files = "event_log_files"


@dataclass(slots=True)
class RetentionItem:
    """One kind: its window, the cutoff, and how many went (or would go, in a dry run)."""

    kind: RetentionKind
    days: int
    cutoff: datetime
    count: int = 0


@dataclass(slots=True)
class RetentionReport:
    """The outcome of one run; `ran` is False when another process was already running it."""

    dry_run: bool
    ran: bool
    started_at: datetime
    finished_at: datetime | None = None
    items: list[RetentionItem] = field(default_factory=list)

    def count(self, kind: RetentionKind) -> int:
        return sum(item.count for item in self.items if item.kind == kind)


class RetentionService:
    """Deletes expired rows, event log files and episode summaries."""

    def __init__(
        self,
        database: Database,
        settings: RetentionSettings,
        locks: LockService,
        event_log: EventLog,
        vector_store: VectorStore | None = None,
        partitions: EventPartitionService | None = None,
    ) -> None:
        self.db = database
        self.partitions = partitions or EventPartitionService(database)
        self.settings = settings
        self.locks = locks
        self.event_log = event_log
        self.vectors = vector_store
        self._token = ""  # this run's lock token, extended between batches

    async def run(self, dry_run: bool) -> RetentionReport:
        """Delete (or with `dry_run`, count) everything older than its window."""
        report = RetentionReport(dry_run=dry_run, ran=False, started_at=utcnow())
        token = await self.locks.acquire(RUN_LOCK, LOCK_TTL_SECS)
        if token is None:
            logger.info("retention already running in another process; skipped")
            return report
        self._token = token
        try:
            report.ran = True
            now = report.started_at
            s = self.settings
            dropped = DroppedPartitions(days=[])
            beats_cutoff = now - timedelta(days=s.heartbeats_days) if s.heartbeats_days else None
            # Partitioned (PostgreSQL): events go a whole day at a time, so a row outlives its
            # window by less than a day and retention deletes (almost) no row one by one.
            events_cutoff = self.partitions.whole_days(now - timedelta(days=s.events_days))
            if not dry_run and s.events_days:
                dropped = await self.partitions.drop_expired(events_cutoff, beats_cutoff)
            if beats_cutoff is not None:
                await self._events(report, beats_cutoff, s.heartbeats_days, heartbeats=True)
                report.items[-1].count += dropped.heartbeats
            if s.events_days:
                await self._events(report, events_cutoff, s.events_days, heartbeats=False)
                report.items[-1].count += dropped.events
                report.items.append(self._event_log_files(now, s.events_days, dry_run))
            if s.episodes_days:
                await self._episodes(report, now, s.episodes_days)
            if s.conversations_days:
                await self._conversations(report, now, s.conversations_days)
            if s.llm_usage_days:
                await self._usage(report, now, s.llm_usage_days)
        finally:
            await self.locks.release(RUN_LOCK, token)
        report.finished_at = utcnow()
        if not dry_run:
            for item in report.items:
                if item.count:
                    RETENTION_DELETED.labels(item.kind.value).inc(item.count)
            RETENTION_LAST_RUN.set(time.time())
        summary = ", ".join(f"{i.kind.value}={i.count}" for i in report.items) or "nothing enabled"
        logger.info("retention {}: {}", "dry run" if dry_run else "done", summary)
        return report

    # -- steps -------------------------------------------------------------------------------

    async def _count(self, count: Callable[[RetentionRepository], Awaitable[int]]) -> int:
        """A dry run's answer for one step: how many rows it would delete."""
        async with self.db.sessions() as session:
            return await count(RetentionRepository(session))

    async def _batches(
        self,
        pick: Callable[[RetentionRepository], Awaitable[list[uuid.UUID]]],
        remove: Callable[[RetentionRepository, list[uuid.UUID]], Awaitable[int]],
        after: Callable[[list[uuid.UUID]], Awaitable[None]] | None = None,
    ) -> int:
        """Pick a batch of ids and delete it, one short transaction each, until none are left."""
        total = 0
        while True:
            async with self.db.sessions.begin() as session:
                repo = RetentionRepository(session)
                ids = await pick(repo)
                if ids:
                    total += await remove(repo, ids)
            if ids and after is not None:
                await after(ids)
            if len(ids) < self.settings.batch_size:
                return total
            await self.locks.extend(RUN_LOCK, self._token, LOCK_TTL_SECS)  # long runs keep it
            await asyncio.sleep(0)  # let requests in between batches

    async def _events(
        self, report: RetentionReport, cutoff: datetime, days: int, heartbeats: bool
    ) -> None:
        kind = RetentionKind.heartbeats if heartbeats else RetentionKind.events
        item = RetentionItem(kind, days, cutoff)
        report.items.append(item)
        if report.dry_run:
            item.count = await self._count(lambda repo: repo.count_events(cutoff, heartbeats))
            return
        limit = self.settings.batch_size
        item.count = await self._batches(
            lambda repo: repo.expired_event_ids(cutoff, heartbeats, limit),
            lambda repo, ids: repo.delete_events(ids),
        )

    async def _episodes(self, report: RetentionReport, now: datetime, days: int) -> None:
        cutoff = now - timedelta(days=days)
        item = RetentionItem(RetentionKind.episodes, days, cutoff)
        summaries = RetentionItem(RetentionKind.episode_summaries, days, cutoff)
        kept = RetentionItem(RetentionKind.labelled_episodes_kept, days, cutoff)
        report.items += [item, summaries, kept]
        kept.count = await self._count(lambda repo: repo.count_labelled_kept(cutoff))
        if report.dry_run:
            item.count = await self._count(lambda repo: repo.count_episodes(cutoff))
            summaries.count = item.count
            return

        async def forget_summaries(ids: list[uuid.UUID]) -> None:
            if self.vectors is None:
                return
            try:
                await self.vectors.delete_events([f"episode:{i}" for i in ids])
                summaries.count += len(ids)
            except Exception as exc:  # the database is the record; summaries can be rebuilt
                logger.warning("retention: episode summaries not removed: {}", type(exc).__name__)

        limit = self.settings.batch_size
        item.count = await self._batches(
            lambda repo: repo.expired_episode_ids(cutoff, limit),
            lambda repo, ids: repo.delete_episodes(ids),
            forget_summaries,
        )

    async def _conversations(self, report: RetentionReport, now: datetime, days: int) -> None:
        cutoff = now - timedelta(days=days)
        item = RetentionItem(RetentionKind.conversations, days, cutoff)
        report.items.append(item)
        if report.dry_run:
            item.count = await self._count(lambda repo: repo.count_conversations(cutoff))
            return
        limit = self.settings.batch_size
        item.count = await self._batches(
            lambda repo: repo.expired_conversation_ids(cutoff, limit),
            lambda repo, ids: repo.delete_conversations(ids),
        )

    async def _usage(self, report: RetentionReport, now: datetime, days: int) -> None:
        first_kept: date = now.astimezone(UTC).date() - timedelta(days=days)
        cutoff = datetime.combine(first_kept, datetime.min.time(), tzinfo=UTC)
        item = RetentionItem(RetentionKind.llm_usage, days, cutoff)
        report.items.append(item)
        # One row per model per day: small enough to go in one statement.
        if report.dry_run:
            item.count = await self._count(lambda repo: repo.count_usage(first_kept))
            return
        async with self.db.sessions.begin() as session:
            item.count = await RetentionRepository(session).delete_usage(first_kept)

    def _event_log_files(self, now: datetime, days: int, dry_run: bool) -> RetentionItem:
        """Rotated JSONL files (`<stem>.<rotated-at><suffix>`) rotated before the cutoff."""
        cutoff = now - timedelta(days=days)
        item = RetentionItem(RetentionKind.event_log_files, days, cutoff)
        for path in rotated_event_logs(self.event_log.path):
            rotated_at = rotation_time(path)
            if rotated_at is None or rotated_at >= cutoff:
                continue
            item.count += 1
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return item


def rotated_event_logs(current: Path) -> list[Path]:
    if not current.parent.is_dir():
        return []
    return sorted(
        p for p in current.parent.glob(f"{current.stem}.*{current.suffix}") if p != current
    )


def rotation_time(path: Path) -> datetime | None:
    """When the file was rotated: the stamp in its name, else its modification time."""
    stamp = path.name.removesuffix(path.suffix).rsplit(".", 1)[-1]
    with contextlib.suppress(ValueError):
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


class JobSubmitter(Protocol):
    """What the scheduler needs of the job service."""

    async def submit(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        payload: bytes | None = None,
        created_by: str | None = None,
    ) -> object: ...


class RetentionScheduler:
    """Queues one retention job per `RETENTION_INTERVAL_SECS` slot (a lifecycle component).

    Time is cut into slots aligned to the Unix epoch (`slot = floor(now / interval)`), so every
    process agrees on them. Every web process wakes at each slot boundary and tries to take the
    slot's lock (`retention:schedule:<slot>`, Redis `SET NX`, kept for two intervals): the one
    that gets it submits a `retention` job with `{"dry_run": false, "slot": <slot>}`; the others
    skip the slot. The job runs on the task queue (a `sentinel worker`, or in process in the
    embedded mode), with its retries, its job record and its failure alert.
    """

    def __init__(
        self,
        service: RetentionService,
        settings: RetentionSettings,
        jobs: JobSubmitter,
    ) -> None:
        self.service = service
        self.settings = settings
        self.jobs = jobs
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.settings.enabled:
            self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def tick(self, slot: int) -> bool:
        """Queue the slot's retention job unless another process already has; True if queued."""
        await self._report_last_run()
        ttl = self.settings.interval_secs * 2  # outlives every process's attempt at this slot
        if await self.service.locks.acquire(f"{SCHEDULE_LOCK}:{slot}", ttl) is None:
            return False
        from app.services.jobs import JobName  # the job queue: not for the CLI's import path

        await self.jobs.submit(
            JobName.RETENTION, {"dry_run": False, "slot": slot}, None, "scheduler"
        )
        logger.info("retention queued for slot {}", slot)
        return True

    async def _report_last_run(self) -> None:
        """Every web process shows when a retention job last succeeded (whichever process ran
        it: the worker has no /metrics), so `SentinelRetentionStalled` sees the real age."""
        from app.services.jobs import JobName

        async with self.service.db.sessions() as session:
            finished = await JobRepository(session).last_finished(JobName.RETENTION)
        if finished is not None:
            RETENTION_LAST_RUN.set(max(finished.timestamp(), _gauge_value(RETENTION_LAST_RUN)))

    async def _loop(self) -> None:
        interval = self.settings.interval_secs
        slot = int(time.time() // interval)  # the first boundary after start comes next
        while True:
            # The slot after the last one tried, even when a slow tick (or a stalled process)
            # has already passed its boundary: that one is then tried at once, late, instead of
            # being skipped. A process behind by more than one slot resumes one slot back.
            slot = max(slot + 1, int(time.time() // interval) - 1)
            await asyncio.sleep(max(slot * interval - time.time(), 0.0))
            try:
                await self.tick(slot)
            except Exception as exc:  # the next slot tries again
                logger.warning("retention not queued: {}", type(exc).__name__)


def _gauge_value(gauge: Gauge) -> float:
    return next((s.value for m in gauge.collect() for s in m.samples), 0.0)
