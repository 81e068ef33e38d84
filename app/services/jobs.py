"""Background jobs: create and enqueue, run with retries and progress, report.

A job is a row in `jobs` plus one queue message carrying its id. Whoever receives the
message (a `sentinel worker`, or the web process itself when there is no Redis) claims the
row with one conditional UPDATE, so a redelivered message never runs a job twice; it then
calls the job's function with a `JobContext` for progress. Transient failures (a database,
Redis, Chroma or network hiccup) are retried with exponential backoff up to
`JOB_MAX_ATTEMPTS`; a job that fails for good raises an alert (`AlertService.job_failed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any, Protocol

import httpx
from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError

from app.clients.job_queue import BrokerBacklog, JobQueue
from app.core.database import Database
from app.core.errors import AppError, NotFound, Unavailable, ValidationFailed
from app.core.metrics import JOBS
from app.core.settings import JobSettings
from app.models.base import utcnow
from app.models.job import Job, JobState
from app.repositories.jobs import JobRepository
from app.repositories.pagination import Page
from app.services.alerts import AlertService
from app.services.job_archive import inspect_archive, pack_uploads

PROGRESS_INTERVAL_SECS = 0.5


class JobName(StrEnum):
    """Names of the registered jobs (stable: they are stored in job rows)."""

    REINDEX = "knowledge.reindex"
    IMPORT = "knowledge.import"
    TRAIN = "model.train"
    RETRAIN = "model.retrain"
    SUMMARIES = "episodes.summaries"
    RETENTION = "retention"


class TransientJobError(Exception):
    """A failure worth retrying (the job function raises it, or a known transient error)."""


class PermanentJobError(Exception):
    """A failure no retry can fix (bad input found while running); the message is shown."""


def is_transient(exc: BaseException) -> bool:
    """Errors from the systems a job talks to that usually pass: retry them."""
    if isinstance(exc, TransientJobError | Unavailable):
        return True
    if isinstance(exc, AppError):
        return exc.code == "reindex_running"  # another reindex holds the lock: try later
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(
        exc,
        ConnectionError
        | TimeoutError
        | RedisConnectionError
        | RedisTimeoutError
        | httpx.TransportError,
    )


def backoff_delay(attempt: int, settings: JobSettings) -> float:
    """Exponential backoff with full jitter: base·2^(attempt-1), capped, then a random share."""
    ceiling = min(settings.retry_max_secs, settings.retry_base_secs * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class JobContext:
    """What a running job function gets: its params, payload, progress and a checkpoint."""

    def __init__(
        self,
        service: JobService,
        job_id: uuid.UUID,
        name: str,
        params: dict[str, Any],
        checkpoint: dict[str, Any] | None,
        attempt: int,
    ) -> None:
        self.service = service
        self.job_id = job_id
        self.name = name
        self.params = params
        self.checkpoint = checkpoint or {}
        self.attempt = attempt
        self._last_write = 0.0

    async def payload(self) -> bytes:
        """The uploaded file this job was queued with (import archive, training data)."""
        data = await self.service.payload(self.job_id)
        if data is None:
            raise PermanentJobError("this job has no uploaded file")
        return data

    async def progress(self, done: int, total: int, message: str | None = None) -> None:
        """Report progress; written at most twice a second (always on the last step)."""
        now = time.monotonic()
        if done < total and now - self._last_write < PROGRESS_INTERVAL_SECS:
            return
        self._last_write = now
        fraction = 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
        await self.service.record_progress(self.job_id, fraction, message, None)

    async def save_checkpoint(self, state: dict[str, Any], fraction: float, message: str) -> None:
        """Persist how far the job got, so a retry resumes instead of repeating work."""
        self.checkpoint = state
        self._last_write = time.monotonic()
        await self.service.record_progress(self.job_id, fraction, message, state)


JobFunction = Callable[[JobContext], Awaitable[Any]]


class JobFunctions(Protocol):
    """The registry of job functions by name (app/services/job_functions.py)."""

    def names(self) -> list[str]: ...
    def get(self, name: str) -> JobFunction | None: ...


@dataclass(frozen=True)
class QueueStatus:
    """`GET /admin/queues`: how much waits, who works, what runs and what failed."""

    mode: str
    depth: int
    workers: int
    running: int
    retrying: int
    failed: int
    succeeded: int
    broker: BrokerBacklog | None


class JobService:
    """Creates jobs, runs them (with retries and progress) and reports on them."""

    def __init__(
        self,
        database: Database,
        queue: JobQueue,
        functions: JobFunctions,
        alerts: AlertService,
        settings: JobSettings,
    ) -> None:
        self.db = database
        self.queue = queue
        self.functions = functions
        self.alerts = alerts
        self.settings = settings
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._consumer: asyncio.Task[None] | None = None
        self._consuming = asyncio.Event()
        queue.bind(self.run)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.queue.start()
        if self.queue.in_process:
            try:
                await self._recover()
            except Exception as exc:  # the database down at start must not stop the API
                logger.warning(
                    "could not re-queue unfinished jobs at start ({}); they wait for the next "
                    "start",
                    type(exc).__name__,
                )
        elif self.settings.web_consumes and not self.queue.is_worker:
            self._consuming = asyncio.Event()
            self._consumer = asyncio.create_task(
                self.queue.work(self._consuming), name="job-consumer"
            )

    async def stop(self) -> None:
        """Let in-process jobs finish briefly; interrupted ones are queued again for restart."""
        if self._consumer is not None:
            self._consuming.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._consumer, 10.0)
            self._consumer = None
        if self._running:
            tasks = list(self._running.values())
            _, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.queue.stop()

    async def _recover(self) -> None:
        """Embedded mode: re-run jobs that were queued, or whose process died while running."""
        stale_before = utcnow() - timedelta(seconds=self.settings.lease_secs)
        async with self.db.sessions() as session:
            jobs = JobRepository(session)
            queued = await jobs.page(limit=1000, cursor=None, state=JobState.queued, name=None)
            ids = [job.id for job in queued.items]
            for state in (JobState.running, JobState.retrying):
                page = await jobs.page(limit=1000, cursor=None, state=state, name=None)
                ids += [job.id for job in page.items if job.updated_at < stale_before]
        for job_id in ids:
            await self.queue.enqueue(job_id)
        if ids:
            logger.info("re-queued {} unfinished job(s) in process", len(ids))

    # -- API side ------------------------------------------------------------------------

    async def submit(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        payload: bytes | None = None,
        created_by: str | None = None,
    ) -> Job:
        """Record a job and put it on the queue; the caller answers 202 with its id."""
        if self.functions.get(name) is None:
            known = ", ".join(self.functions.names())
            raise ValidationFailed(f"Unknown job '{name}'; known jobs: {known}", code="unknown_job")
        job = Job(
            id=uuid.uuid4(),
            name=name,
            state=JobState.queued,
            params=params or {},
            progress=0.0,
            attempts=0,
            max_attempts=self.settings.max_attempts,
            created_by=created_by,
            payload=payload,
        )
        async with self.db.sessions.begin() as session:
            JobRepository(session).add(job)
        try:
            await self.queue.enqueue(job.id)
        except Exception as exc:
            await self._finish(
                job.id, JobState.failed, None, f"queue unavailable: {type(exc).__name__}"
            )
            raise Unavailable(
                "The job queue (Redis) is unreachable; the job was not queued. Retry shortly",
                code="job_queue_unavailable",
            ) from exc
        JOBS.labels(job=name, outcome="queued").inc()
        return await self.get(job.id)

    async def submit_import(self, files: list[tuple[str, bytes]], created_by: str | None) -> Job:
        """Bulk import: the uploads (or one zip) are checked now, imported by the job."""
        archive = pack_uploads(files)
        entries = inspect_archive(
            archive, self.settings.import_max_files, self.settings.import_max_unpacked_bytes
        )
        return await self.submit(JobName.IMPORT, {"files": len(entries)}, archive, created_by)

    async def submit_training(
        self, data: bytes, params: dict[str, Any], created_by: str | None
    ) -> Job:
        """Model training on an uploaded `.npz` (checked for X and y arrays now)."""
        await asyncio.to_thread(_check_npz, data)
        return await self.submit(JobName.TRAIN, params, data, created_by)

    async def get(self, job_id: uuid.UUID) -> Job:
        async with self.db.sessions() as session:
            job = await JobRepository(session).get(job_id)
        if job is None:
            raise NotFound(f"No job with id {job_id}", code="job_not_found")
        return job

    async def page(
        self, *, limit: int, cursor: str | None, state: JobState | None, name: str | None
    ) -> tuple[Page[Job], int]:
        """Jobs newest first after `cursor`, filtered, and how many match in all."""
        async with self.db.sessions() as session:
            jobs = JobRepository(session)
            page = await jobs.page(limit=limit, cursor=cursor, state=state, name=name)
            return page, await jobs.count(state, name)

    async def status(self) -> QueueStatus:
        async with self.db.sessions() as session:
            counts = await JobRepository(session).counts()
        return QueueStatus(
            mode="in_process" if self.queue.in_process else "redis",
            depth=counts.queued,
            workers=await self.queue.workers(),
            running=counts.running,
            retrying=counts.retrying,
            failed=counts.failed,
            succeeded=counts.succeeded,
            broker=await self.queue.backlog(),
        )

    # -- runner side ---------------------------------------------------------------------

    async def payload(self, job_id: uuid.UUID) -> bytes | None:
        async with self.db.sessions() as session:
            return await JobRepository(session).payload(job_id)

    async def record_progress(
        self,
        job_id: uuid.UUID,
        fraction: float,
        message: str | None,
        checkpoint: dict[str, Any] | None,
    ) -> None:
        async with self.db.sessions.begin() as session:
            job = await JobRepository(session).get(job_id)
            if job is None:
                return
            job.progress = round(fraction, 4)
            if message is not None:
                job.progress_message = message[:300]
            if checkpoint is not None:
                job.result = checkpoint
            job.updated_at = utcnow()

    async def run(self, job_id: uuid.UUID, worker: str) -> None:
        """The task function: claim the job, run it with retries, record the outcome."""
        stale_before = utcnow() - timedelta(seconds=self.settings.lease_secs)
        async with self.db.sessions.begin() as session:
            claimed = await JobRepository(session).claim(job_id, worker, stale_before)
        if not claimed:
            logger.info("job {} already taken or finished; message dropped", job_id)
            return
        current = asyncio.current_task()
        if current is not None:
            self._running[job_id] = current
        heartbeat = asyncio.create_task(self._heartbeat(job_id), name=f"job-heartbeat-{job_id}")
        try:
            await self._run_claimed(job_id)
        except asyncio.CancelledError:
            # Shutdown interrupted it: hand it back to the queue for the next start.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._requeue(job_id))
            raise
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            self._running.pop(job_id, None)

    async def _run_claimed(self, job_id: uuid.UUID) -> None:
        job = await self.get(job_id)
        function = self.functions.get(job.name)
        attempt = job.attempts
        while True:
            attempt += 1
            await self._set_attempt(job_id, attempt)
            ctx = JobContext(self, job_id, job.name, dict(job.params or {}), None, attempt)
            ctx.checkpoint = dict((await self.get(job_id)).result or {})
            started = time.perf_counter()
            try:
                if function is None:
                    raise PermanentJobError(f"no function for job '{job.name}' in this version")
                result = await function(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _describe(exc)
                if is_transient(exc) and attempt < job.max_attempts:
                    delay = backoff_delay(attempt, self.settings)
                    logger.warning(
                        "job {} {} attempt {}/{} failed ({}); retrying in {:.1f} s",
                        job.name,
                        job_id,
                        attempt,
                        job.max_attempts,
                        error,
                        delay,
                    )
                    JOBS.labels(job=job.name, outcome="retried").inc()
                    await self._set_retrying(job_id, error)
                    await asyncio.sleep(delay)
                    continue
                logger.error("job {} {} failed for good: {}", job.name, job_id, error)
                await self._finish(job_id, JobState.failed, None, error)
                JOBS.labels(job=job.name, outcome="failed").inc()
                await self.alerts.job_failed(job.name, job_id, error)
                return
            try:
                stored = _as_json(result)
            except (TypeError, ValueError) as exc:  # never leave a job "running" forever
                await self._finish(job_id, JobState.failed, None, f"unstorable result: {exc}")
                JOBS.labels(job=job.name, outcome="failed").inc()
                return
            await self._finish(job_id, JobState.succeeded, stored, None)
            JOBS.labels(job=job.name, outcome="succeeded").inc()
            logger.info(
                "job {} {} succeeded in {:.1f} s", job.name, job_id, time.perf_counter() - started
            )
            return

    async def _heartbeat(self, job_id: uuid.UUID) -> None:
        """Keep a long job's row fresh so it is not taken for orphaned."""
        interval = max(self.settings.lease_secs / 4, 1.0)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.db.sessions.begin() as session:
                    job = await JobRepository(session).get(job_id)
                    if job is not None:
                        job.updated_at = utcnow()
            except Exception as exc:
                logger.warning("job heartbeat failed: {}", type(exc).__name__)

    async def _set_attempt(self, job_id: uuid.UUID, attempt: int) -> None:
        async with self.db.sessions.begin() as session:
            job = await JobRepository(session).get(job_id)
            if job is not None:
                job.attempts = attempt
                job.state = JobState.running
                job.updated_at = utcnow()

    async def _set_retrying(self, job_id: uuid.UUID, error: str) -> None:
        async with self.db.sessions.begin() as session:
            job = await JobRepository(session).get(job_id)
            if job is not None:
                job.state = JobState.retrying
                job.error = error
                job.updated_at = utcnow()

    async def _requeue(self, job_id: uuid.UUID) -> None:
        async with self.db.sessions.begin() as session:
            job = await JobRepository(session).get(job_id)
            if job is not None and not JobState(job.state).finished:
                job.state = JobState.queued
                job.updated_at = utcnow()

    async def _finish(
        self, job_id: uuid.UUID, state: JobState, result: dict[str, Any] | None, error: str | None
    ) -> None:
        async with self.db.sessions.begin() as session:
            repo = JobRepository(session)
            job = await repo.get(job_id)
            if job is None:
                return
            job.state = state
            job.error = error
            if state == JobState.succeeded:
                job.result = result
                job.progress = 1.0
            job.finished_at = utcnow()
            job.payload = None  # the upload is no longer needed


def _check_npz(data: bytes) -> None:
    import io

    import numpy as np

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            names = set(npz.files)
    except Exception as exc:
        raise ValidationFailed(
            "The training file is not a readable .npz archive (numpy.savez)", code="bad_npz"
        ) from exc
    missing = [k for k in ("X", "y") if k not in names]
    if missing:
        raise ValidationFailed(
            f"The .npz lacks {', '.join(missing)}: it needs X [N,T,F] and y [N] "
            f"(found: {', '.join(sorted(names)) or 'nothing'})",
            code="bad_npz",
        )


def _describe(exc: BaseException) -> str:
    """A message for the job record: ours as written, others by type (no secrets, no traces)."""
    if isinstance(exc, PermanentJobError | TransientJobError | AppError):
        return str(exc)[:2000]
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as_json(result: Any) -> dict[str, Any] | None:
    """A job's result as plain JSON (times, ids and enums as strings), so storing it never fails."""
    if result is None:
        return None
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        value: Any = dataclasses.asdict(result)
    elif hasattr(result, "model_dump"):
        value = result.model_dump(mode="json")
    elif isinstance(result, dict):
        value = result
    else:
        value = {"value": result}
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return str(value)
