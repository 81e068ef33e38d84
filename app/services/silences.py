"""Silences: alerts from sources matching a glob are recorded as `silenced`, not sent.

A silence is one-off (`until`: from now until then) or recurring (`schedule`: whenever that
schedule runs, until it is ended). `DELETE` ends a silence now rather than removing it: it
stays listed with `include_expired=true` (and a one-off one still gets its end-of-window
summary, see `app/services/maintenance.py`); ending one that has already ended is a 404.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import Database
from app.core.errors import NotFound, ValidationFailed
from app.models.alert import AlertSilence
from app.models.base import utcnow
from app.repositories.alerts import SilenceRepository
from app.services.alert_schedules import ScheduleBook, ScheduleRepository

MAX_SILENCE = timedelta(days=366)


class SilenceService:
    """Creates, lists and ends silences, and finds the one that covers a source."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def create(
        self,
        source_pattern: str,
        until: datetime | None,
        reason: str,
        created_by: str | None,
        schedule: str | None = None,
    ) -> AlertSilence:
        now = utcnow()
        ends_at = None if until is None else self._check_until(until, now)
        silence = AlertSilence(
            id=uuid.uuid4(),
            source_pattern=source_pattern,
            starts_at=now,
            ends_at=ends_at,
            schedule=schedule,
            reason=reason,
            created_by=created_by,
            created_at=now,
        )
        async with self.db.sessions.begin() as session:
            if schedule is not None and not await ScheduleRepository(session).exists(schedule):
                raise ValidationFailed(
                    f"unknown schedule(s) {schedule}; define them first with "
                    "PUT /api/v1/alerts/schedules"
                )
            SilenceRepository(session).add(silence)
        return silence

    @staticmethod
    def _check_until(until: datetime, now: datetime) -> datetime:
        if until.tzinfo is None:
            raise ValidationFailed("until needs a time zone, e.g. 2026-11-25T18:00:00+09:00")
        try:
            until = until.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationFailed(
                "until is out of range; give a date within the next year"
            ) from exc
        if until <= now:
            raise ValidationFailed("until is in the past; a silence must end in the future")
        if until - now > MAX_SILENCE:
            raise ValidationFailed("a silence may last at most 366 days; choose an earlier until")
        return until

    async def list(self, include_expired: bool = False) -> list[AlertSilence]:
        async with self.db.sessions() as session:
            return await SilenceRepository(session).list(utcnow(), include_expired)

    async def end(self, silence_id: uuid.UUID, now: datetime | None = None) -> None:
        """End a silence now; it stays listed as expired. 404 if unknown or already ended."""
        async with self.db.sessions.begin() as session:
            repo = SilenceRepository(session)
            if await repo.end(silence_id, now or utcnow()):
                return
            if await repo.get(silence_id) is None:
                raise NotFound(f"No silence with id {silence_id}")
            raise NotFound(f"Silence {silence_id} has already ended")

    @staticmethod
    async def matching(
        session: AsyncSession, source_id: str, now: datetime, schedules: ScheduleBook
    ) -> AlertSilence | None:
        """The silence covering this source now: a one-off one in its window, or a
        recurring one whose schedule is active."""
        for silence in await SilenceRepository(session).active(now):
            if not fnmatchcase(source_id, silence.source_pattern):
                continue
            if silence.schedule and not schedules.is_active(silence.schedule, now):
                continue
            return silence
        return None
