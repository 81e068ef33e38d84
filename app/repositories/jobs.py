"""SQL for job records. Never commits: the job service owns the transactions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import affected_rows
from app.models.base import utcnow
from app.models.job import Job, JobState
from app.repositories.pagination import Page, keyset_page

T = TypeVar("T")


@dataclass(frozen=True)
class JobCounts:
    """How many job records are in each live or failed state."""

    queued: int
    running: int
    retrying: int
    failed: int
    succeeded: int


class JobRepository:
    """Job rows: add, read, claim and finish."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, job: Job) -> Job:
        self.session.add(job)
        return job

    async def get(self, job_id: uuid.UUID) -> Job | None:
        return await self.session.get(Job, job_id)

    async def payload(self, job_id: uuid.UUID) -> bytes | None:
        return await self.session.scalar(select(Job.payload).where(Job.id == job_id))

    @staticmethod
    def _matching(stmt: Select[T], state: JobState | None, name: str | None) -> Select[T]:
        if state is not None:
            stmt = stmt.where(Job.state == state)
        if name is not None:
            stmt = stmt.where(Job.name == name)
        return stmt

    async def page(
        self, *, limit: int, cursor: str | None, state: JobState | None, name: str | None
    ) -> Page[Job]:
        """Jobs newest first, filtered, after `cursor`."""
        return await keyset_page(
            self.session,
            self._matching(select(Job), state, name),
            at=Job.created_at,
            row_id=Job.id,
            limit=limit,
            cursor=cursor,
        )

    async def count(self, state: JobState | None, name: str | None) -> int:
        """How many jobs match the filters."""
        stmt = self._matching(select(func.count()).select_from(Job), state, name)
        return int(await self.session.scalar(stmt) or 0)

    async def claim(self, job_id: uuid.UUID, worker: str, stale_before: datetime) -> bool:
        """Mark the job running for `worker` if it is queued, or if its runner went silent.

        One conditional UPDATE, so two processes handed the same message (a redelivery
        after a crash) never both run it.
        """
        now = utcnow()
        result = await self.session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                (Job.state == JobState.queued)
                | (
                    Job.state.in_([JobState.running, JobState.retrying])
                    & (Job.updated_at < stale_before)
                ),
            )
            .values(
                state=JobState.running,
                worker=worker,
                started_at=func.coalesce(Job.started_at, now),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return affected_rows(result) == 1

    async def counts(self) -> JobCounts:
        rows = await self.session.execute(select(Job.state, func.count()).group_by(Job.state))
        by_state = {JobState(state): int(n) for state, n in rows}
        return JobCounts(
            queued=by_state.get(JobState.queued, 0),
            running=by_state.get(JobState.running, 0),
            retrying=by_state.get(JobState.retrying, 0),
            failed=by_state.get(JobState.failed, 0),
            succeeded=by_state.get(JobState.succeeded, 0),
        )

    async def last_finished(self, name: str) -> datetime | None:
        """When the latest successful job called `name` finished (None: never)."""
        return await self.session.scalar(
            select(func.max(Job.finished_at)).where(
                Job.name == name, Job.state == JobState.succeeded
            )
        )
