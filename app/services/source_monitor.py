"""Offline sources: a watched source that has sent at least one heartbeat and then nothing for
`SOURCE_OFFLINE_AFTER_SECS` raises one `source_offline` alert, and one `source_recovered`
notice when it is heard from again; nothing more while it stays down. Watched: covered by an
agent credential's source patterns, or registered by an admin (`PUT /admin/sources/{id}`).

Runs in the dispatcher's housekeeping loop under a lock (`app/core/lock.py`), so one process
checks at a time; the `source_outages` primary key makes a second alert for the same outage
impossible even where the lock is process-local (no Redis).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import Database
from app.core.lock import LockService
from app.core.settings import AlertSettings, EventSettings
from app.models.alert import Alert, AlertKind, SourceOutage
from app.models.event import Source
from app.repositories.agents import (
    AgentRepository,
    RegisteredSourceRepository,
    watched_condition,
)
from app.repositories.alerts import QUIET, AlertRepository, OutageRepository
from app.services.agents import covered
from app.services.alerts import AlertService

LOCK_NAME = "alerts:source-monitor"


class SourceMonitor:
    """Finds sources that went quiet or came back and records their alerts."""

    def __init__(
        self,
        database: Database,
        alerts: AlertService,
        locks: LockService,
        events: EventSettings,
        settings: AlertSettings,
    ) -> None:
        self.db = database
        self.alerts = alerts
        self.locks = locks
        self.events = events
        self.settings = settings
        self._first_check: datetime | None = None

    async def check(self, now: datetime) -> list[Alert]:
        ttl = max(30.0, self.settings.monitor_interval_secs * 4)
        token = await self.locks.acquire(LOCK_NAME, ttl=ttl)
        if token is None:
            return []  # another process is checking
        try:
            return await self._check(now)
        finally:
            await self.locks.release(LOCK_NAME, token)

    @staticmethod
    async def _newly_quiet_watched(session: AsyncSession, cutoff: datetime) -> list[Source]:
        """Quiet sources that someone vouched for: an agent's patterns cover them or an admin
        registered them. Anyone holding the shared token can invent source ids; those are
        listed but never page anybody."""
        patterns = await AgentRepository(session).all_patterns()
        quiet = await OutageRepository(session).newly_quiet(
            cutoff, watched=watched_condition(patterns)
        )
        registered = await RegisteredSourceRepository(session).watched_among(s.id for s in quiet)
        # LIKE ignores case on SQLite: the glob decides.
        return [s for s in quiet if s.id in registered or covered(s.id, patterns)]

    async def _check(self, now: datetime) -> list[Alert]:
        window = timedelta(seconds=self.events.source_offline_after_secs)
        if self._first_check is None:
            self._first_check = now
        # Right after a start, sources had no chance to reach us: give them one full window
        # before calling them offline (a restart must not page for every camera).
        settled = now - self._first_check >= window
        created: list[Alert] = []
        async with self.db.sessions.begin() as session:
            outages, alerts = OutageRepository(session), AlertRepository(session)
            quiet = await self._newly_quiet_watched(session, now - window) if settled else []
            for source in quiet:
                alert = await self.alerts.record(
                    session,
                    kind=AlertKind.source_offline,
                    source_id=source.id,
                    now=now,
                    occurred_at=source.last_seen,
                )
                outages.add(
                    SourceOutage(
                        source_id=source.id,
                        offline_since=source.last_seen,
                        alert_id=alert.id,
                        created_at=now,
                    )
                )
                created.append(alert)
            for outage, source in await outages.recovered():
                await outages.remove(outage.source_id)
                offline = await alerts.get(outage.alert_id) if outage.alert_id else None
                if offline is None or offline.status in QUIET:
                    continue  # nobody was told it went down: no recovery notice either
                created.append(
                    await self.alerts.record(
                        session,
                        kind=AlertKind.source_recovered,
                        source_id=source.id,
                        now=now,
                        occurred_at=source.last_seen,
                        budgeted=False,
                    )
                )
        for alert in created:
            logger.info("source {}: {} alert {}", alert.source_id, alert.kind, alert.status)
        return created
