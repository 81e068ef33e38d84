"""Silences: alerts from sources matching a glob are recorded as `silenced`, not sent, until
the silence ends or is deleted."""

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
from app.services.alert_schedules import ScheduleBook

MAX_SILENCE = timedelta(days=366)


class SilenceService:
    """Creates, lists and deletes silences, and finds the one that covers a source."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def create(
        self, source_pattern: str, until: datetime, reason: str, created_by: str | None
    ) -> AlertSilence:
        now = utcnow()
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
        silence = AlertSilence(
            id=uuid.uuid4(),
            source_pattern=source_pattern,
            starts_at=now,
            ends_at=until,
            reason=reason,
            created_by=created_by,
            created_at=now,
        )
        async with self.db.sessions.begin() as session:
            SilenceRepository(session).add(silence)
        return silence

    async def list(self, include_expired: bool = False) -> list[AlertSilence]:
        async with self.db.sessions() as session:
            return await SilenceRepository(session).list(utcnow(), include_expired)

    async def delete(self, silence_id: uuid.UUID) -> None:
        async with self.db.sessions.begin() as session:
            repo = SilenceRepository(session)
            silence = await repo.get(silence_id)
            if silence is None:
                raise NotFound(f"No silence with id {silence_id}")
            await repo.delete(silence)

    @staticmethod
    async def matching(
        session: AsyncSession, source_id: str, now: datetime, schedules: ScheduleBook
    ) -> AlertSilence | None:
        """The silence covering this source now: a one-off one in its window, or a
        recurring one whose schedule is active."""
        for silence in await SilenceRepository(session).active(now):
            if not fnmatchcase(source_id, silence.source_pattern):
                continue
            if silence.ends_at is None and not (
                silence.schedule and schedules.is_active(silence.schedule, now)
            ):
                continue
            return silence
        return None
