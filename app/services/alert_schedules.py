"""Schedules: named recurring time intervals in ALERT_TIMEZONE, used by routing rules
(`active_during` / `inactive_during`) and recurring silences (`"schedule": "<name>"`).

INTERFACE (kept stable; the rest of the module may grow): `ScheduleBook.empty()`,
`await ScheduleBook.load(session, timezone)`, `book.names`, `book.is_active(name, now)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.alert import AlertSchedule


class ScheduleBook:
    """The stored schedules, loaded once per routing decision; `is_active(name, now)`."""

    def __init__(self, schedules: Iterable[AlertSchedule] = (), timezone: str = "UTC") -> None:
        self._rows = {s.name: s for s in schedules}
        self.zone = ZoneInfo(timezone)

    @classmethod
    def empty(cls) -> ScheduleBook:
        return cls()

    @classmethod
    async def load(cls, session: AsyncSession, timezone: str) -> ScheduleBook:
        rows = (await session.execute(select(AlertSchedule))).scalars()
        return cls(list(rows), timezone)

    @property
    def names(self) -> list[str]:
        return sorted(self._rows)

    def is_active(self, name: str, now: datetime) -> bool:
        """Whether `now` falls in schedule `name` (an unknown name is never active)."""
        return False  # TODO(helper A): weekdays × times, overnight ranges, dated exceptions
