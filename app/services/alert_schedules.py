"""Schedules: named recurring time intervals in ALERT_TIMEZONE, used by routing rules
(`active_during` / `inactive_during`) and recurring silences (`"schedule": "<name>"`).

INTERFACE (kept stable; the rest of the module may grow): `ScheduleBook.empty()`,
`await ScheduleBook.load(session, timezone)`, `book.names`, `book.is_active(name, now)`.

A schedule is `{"name", "weekdays", "times", "exceptions"}`. What `is_active(name, now)`
means, with `now` turned into the local wall-clock date D and time T in ALERT_TIMEZONE
(zoneinfo, so DST is followed: on a day clocks jump, a local time that does not exist is
simply never reached):

- A *day runs* when its weekday is listed and it has no `active: false` exception.
- A time range `start`–`end` with `end > start` covers `start <= T < end` of each running day.
  With `end <= start` it is overnight and belongs to the day it STARTS on: mon 22:00–06:00
  covers Monday from 22:00 and Tuesday until 06:00, and runs only when Monday runs. So the
  part after midnight follows the start date: on a date with an `active: false` exception,
  the night shift that began the evening before still runs until its end, and the one that
  would have begun that evening does not (nor its part after the next midnight).
  `start == end` is a full 24 hours from `start`.
- An exception `{"date": D, "active": true}` makes the whole local date D active, 00:00 to
  24:00 (the date's own ranges, if its weekday is listed, still spill past midnight as usual).
- An unknown name is never active (a routes file may name one the API never stored).

`ScheduleService` reads and replaces the whole set (`GET/PUT /api/v1/alerts/schedules`); it
refuses to remove a schedule that a stored routing rule or a recurring silence still names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import Database
from app.core.errors import Conflict
from app.core.settings import AlertSettings
from app.models.alert import AlertSchedule
from app.models.base import utcnow
from app.repositories.alerts import RouteRepository, SilenceRepository

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULE_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_SCHEDULES = 50
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class TimeRange(BaseModel):
    """`HH:MM`–`HH:MM` local wall-clock time; `end <= start` runs past midnight."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(examples=["22:00"])
    end: str = Field(examples=["06:00"])

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        if not _CLOCK.match(v):
            raise ValueError(f"times are HH:MM from 00:00 to 23:59, got {v!r}")
        return v

    def minutes(self) -> tuple[int, int]:
        return _minutes(self.start), _minutes(self.end)


class ScheduleException(BaseModel):
    """A dated exception: the whole local date is active (`true`) or its ranges do not run."""

    model_config = ConfigDict(extra="forbid")

    date: date
    active: bool


class ScheduleSpec(BaseModel):
    """One named schedule as the API reads and writes it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SCHEDULE_NAME, examples=["night"])
    weekdays: list[str] = Field(default_factory=lambda: list(WEEKDAYS), max_length=7)
    times: list[TimeRange] = Field(default_factory=list, max_length=10)
    exceptions: list[ScheduleException] = Field(default_factory=list, max_length=100)

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, v: list[str]) -> list[str]:
        names = [d.strip().lower() for d in v]
        unknown = [d for d in names if d not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday(s) {', '.join(unknown)}; use {', '.join(WEEKDAYS)}")
        return [d for d in WEEKDAYS if d in names]

    @field_validator("exceptions")
    @classmethod
    def _one_per_date(cls, v: list[ScheduleException]) -> list[ScheduleException]:
        dates = [e.date for e in v]
        twice = sorted({d.isoformat() for d in dates if dates.count(d) > 1})
        if twice:
            raise ValueError(f"exception date(s) {', '.join(twice)} given more than once")
        return sorted(v, key=lambda e: e.date)


class ScheduleSet(BaseModel):
    """The whole set of schedules (`PUT` replaces every stored one)."""

    model_config = ConfigDict(extra="forbid")

    schedules: list[ScheduleSpec] = Field(max_length=MAX_SCHEDULES)

    @model_validator(mode="after")
    def _unique(self) -> ScheduleSet:
        names = [s.name for s in self.schedules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"schedule name(s) {', '.join(twice)} given more than once")
        return self


class ScheduleOut(ScheduleSpec):
    active: bool = Field(description="Whether the schedule runs right now.")


class ScheduleList(BaseModel):
    timezone: str
    schedules: list[ScheduleOut]


def spec_of(row: AlertSchedule) -> ScheduleSpec:
    """A stored schedule as its spec (a row not yet flushed may lack its defaults)."""
    return ScheduleSpec(
        name=row.name,
        weekdays=list(row.weekdays or []),
        times=[TimeRange.model_validate(t) for t in row.times or []],
        exceptions=[ScheduleException.model_validate(e) for e in row.exceptions or []],
    )


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class _Compiled:
    """A schedule ready for `is_active`: weekday numbers, ranges in minutes, exceptions."""

    weekdays: frozenset[int]
    ranges: tuple[tuple[int, int], ...]
    exceptions: dict[date, bool]

    @classmethod
    def of(cls, row: AlertSchedule) -> _Compiled:
        spec = spec_of(row)
        return cls(
            frozenset(WEEKDAYS.index(d) for d in spec.weekdays),
            tuple(r.minutes() for r in spec.times),
            {e.date: e.active for e in spec.exceptions},
        )

    def runs(self, day: date) -> bool:
        return day.weekday() in self.weekdays and self.exceptions.get(day) is not False

    def covers(self, day: date, clock: time) -> bool:
        if self.exceptions.get(day) is True:
            return True
        t = clock.hour * 60 + clock.minute
        today, yesterday = self.runs(day), self.runs(day - timedelta(days=1))
        for start, end in self.ranges:
            if end > start:
                if today and start <= t < end:
                    return True
            elif (today and t >= start) or (yesterday and t < end):
                return True
        return False


class ScheduleBook:
    """The stored schedules, loaded once per routing decision; `is_active(name, now)`."""

    def __init__(self, schedules: Iterable[AlertSchedule] = (), timezone: str = "UTC") -> None:
        self._rows = {s.name: s for s in schedules}
        self._compiled: dict[str, _Compiled] = {}
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
        row = self._rows.get(name)
        if row is None:
            return False
        compiled = self._compiled.get(name)
        if compiled is None:
            compiled = self._compiled[name] = _Compiled.of(row)
        local = now.astimezone(self.zone)
        return compiled.covers(local.date(), local.time())


class ScheduleRepository:
    """The `alert_schedules` table."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> list[AlertSchedule]:
        stmt = select(AlertSchedule).order_by(AlertSchedule.name)
        return list((await self.session.execute(stmt)).scalars())

    async def exists(self, name: str) -> bool:
        return await self.session.get(AlertSchedule, name) is not None

    async def replace(self, rows: list[AlertSchedule]) -> None:
        await self.session.execute(delete(AlertSchedule))
        self.session.add_all(rows)
        await self.session.flush()


class ScheduleService:
    """Reads and replaces the schedules (admin API)."""

    def __init__(self, database: Database, settings: AlertSettings) -> None:
        self.db = database
        self.settings = settings

    async def current(self) -> ScheduleList:
        async with self.db.sessions() as session:
            rows = await ScheduleRepository(session).all()
        book = ScheduleBook(rows, self.settings.timezone)
        now = utcnow()
        return ScheduleList(
            timezone=self.settings.timezone,
            schedules=[
                ScheduleOut.model_validate(
                    {
                        **spec_of(r).model_dump(),
                        "active": book.is_active(r.name, now),
                    }
                )
                for r in rows
            ],
        )

    async def replace(self, wanted: ScheduleSet) -> ScheduleList:
        """Store exactly these schedules; removing one still in use is a 409 naming its users."""
        now = utcnow()
        async with self.db.sessions.begin() as session:
            repo = ScheduleRepository(session)
            kept = {s.name for s in wanted.schedules}
            removed = {r.name for r in await repo.all()} - kept
            users = await self._users(session, removed, now)
            if users:
                raise Conflict(
                    "schedule(s) still in use, so they cannot be removed: "
                    f"{'; '.join(users)}. Change those first"
                )
            await repo.replace(
                [
                    AlertSchedule(
                        name=s.name,
                        weekdays=s.weekdays,
                        times=[t.model_dump() for t in s.times],
                        exceptions=[e.model_dump(mode="json") for e in s.exceptions],
                        created_at=now,
                        updated_at=now,
                    )
                    for s in wanted.schedules
                ]
            )
        return await self.current()

    @staticmethod
    async def _users(session: AsyncSession, names: set[str], now: datetime) -> list[str]:
        """Who names one of these schedules: stored routing rules and recurring silences."""
        if not names:
            return []
        users = []
        for route in await RouteRepository(session).list():
            options = route.options or {}
            named = {*options.get("active_during", []), *options.get("inactive_during", [])}
            for name in sorted(named & names):
                users.append(
                    f"{name} by routing rule {route.position + 1} ({route.source_pattern})"
                )
        for silence in await SilenceRepository(session).recurring_using(names, now):
            users.append(f"{silence.schedule} by silence {silence.id} ({silence.source_pattern})")
        return users
