"""Maintenance windows: the reminder before a one-off silence ends and the summary of what
it held back once it has ended (helper-owned module; INTERFACE: `MaintenanceKeeper`).

- Reminder: MAINTENANCE_REMINDER_SECS (0 = none) before a one-off silence's `ends_at`, one
  `maintenance_reminder` alert for the silence's source pattern, routed like that source's
  alerts. Only for a silence that started before its reminder time (a 10-minute silence with
  a 15-minute reminder gets none), and never after it has ended.
- Summary: once a one-off silence has ended (its `until` passed, or `DELETE` ended it early),
  one `maintenance_summary` alert with `data={"silence_id", "counts": {kind: n}}`: the alerts
  it recorded as `silenced` per kind. A silence that held nothing back still gets its summary
  ("none": the window is over and alerts flow again) if it lasted at least a minute; one ended
  within a minute of its start held nothing back and was a slip, so it gets none. A silence
  that ended more than a day before the keeper saw it (say, before this feature existed)
  gets no summary, so an upgrade never floods the channels.
- Recurring silences get neither (they have no end of a window to announce).

Each message is written in the transaction that sets `reminded_at` / `summarised_at` with a
conditional UPDATE (`... WHERE reminded_at IS NULL`): exactly one process wins per silence.
Neither message is held back by the silence it is about (`record(..., skip_silences=True)`)
nor counted against the hourly budget.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.core.database import Database
from app.core.settings import AlertSettings
from app.models.alert import AlertKind, AlertSilence, AlertStatus
from app.repositories.alerts import SilenceRepository
from app.services.alerts import AlertService

SUMMARY_HORIZON = timedelta(days=1)
MIN_EMPTY_SUMMARY = timedelta(minutes=1)


class MaintenanceKeeper:
    """Housekeeper: reminders and end-of-window summaries, once each across processes."""

    name = "maintenance"

    def __init__(self, database: Database, settings: AlertSettings, alerts: AlertService) -> None:
        self.db = database
        self.settings = settings
        self.alerts = alerts

    async def run(self, now: datetime) -> int:
        lead = timedelta(seconds=self.settings.maintenance_reminder_secs)
        async with self.db.sessions() as session:
            repo = SilenceRepository(session)
            reminders = await repo.due_reminders(now, lead) if lead > timedelta(0) else []
            summaries = await repo.due_summaries(now, SUMMARY_HORIZON)
        created = 0
        for silence in reminders:
            created += await self._remind(silence, now)
        for silence in summaries:
            created += await self._summarise(silence, now)
        return created

    async def _remind(self, silence: AlertSilence, now: datetime) -> int:
        async with self.db.sessions.begin() as session:
            if not await SilenceRepository(session).claim_reminder(silence.id, now):
                return 0
            alert = await self.alerts.record(
                session,
                kind=AlertKind.maintenance_reminder,
                source_id=silence.source_pattern,
                now=now,
                occurred_at=silence.ends_at,
                label=silence.reason or None,
                budgeted=False,
                data={"silence_id": str(silence.id)},
                skip_silences=True,
            )
        return int(alert.status == AlertStatus.pending.value)

    async def _summarise(self, silence: AlertSilence, now: datetime) -> int:
        async with self.db.sessions.begin() as session:
            repo = SilenceRepository(session)
            if not await repo.claim_summary(silence.id, now):
                return 0
            # Read again: an early DELETE may have moved ends_at since the candidates were read.
            silence = await repo.get(silence.id) or silence
            ended = silence.ends_at or now
            counts = await repo.held_back(silence)
            if not counts and ended - silence.starts_at < MIN_EMPTY_SUMMARY:
                return 0
            alert = await self.alerts.record(
                session,
                kind=AlertKind.maintenance_summary,
                source_id=silence.source_pattern,
                now=now,
                occurred_at=ended,
                label=silence.reason or None,
                budgeted=False,
                data={"silence_id": str(silence.id), "counts": counts},
                skip_silences=True,
            )
        return int(alert.status == AlertStatus.pending.value)
