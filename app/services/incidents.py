"""Incidents: reading and acknowledging them, and the housekeeper that speaks for them.

An incident groups alerts of one source and kind (`AlertService.record` opens or joins it).
Its messages are deliveries of its first alert, so the outbox's exactly-once per channel
holds for each: `notify` (written with the alert), `update:n` (at most one per
INCIDENT_UPDATE_INTERVAL_SECS while alerts keep joining), `resolve` (after
INCIDENT_GROUP_WINDOW_SECS without a new alert; an outage incident resolves with its recovery
notice instead), and `escalation`, `escalation:2`… (its chain, until acknowledged).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from loguru import logger

from app.core.database import Database
from app.core.errors import NotFound
from app.core.settings import AlertSettings
from app.models.alert import (
    AckVia,
    AlertKind,
    DeliveryStage,
    Incident,
    stage_name,
)
from app.models.base import utcnow
from app.repositories.alerts import AlertRepository, DeliveryRepository
from app.repositories.incidents import FlapRepository, IncidentRepository
from app.schemas.alert_routing import EscalationChain
from app.schemas.incidents import IncidentDetail, IncidentOut
from app.services.alerts import alert_out, pending_delivery

BATCH = 50


def incident_out(incident: Incident) -> IncidentOut:
    return IncidentOut.model_validate(incident)


class IncidentService:
    """Lists, reads and acknowledges incidents (acknowledging one acknowledges its alerts
    and cancels its escalation steps not yet sent, in one transaction)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None,
        status: str | None,
        source_id: str | None,
        kind: str | None,
    ) -> tuple[list[IncidentOut], str | None]:
        async with self.db.sessions() as session:
            page = await IncidentRepository(session).page(
                limit=limit, cursor=cursor, status=status, source_id=source_id, kind=kind
            )
        return [incident_out(i) for i in page.items], page.next_cursor

    async def get(self, incident_id: uuid.UUID) -> IncidentDetail:
        async with self.db.sessions() as session:
            repo = IncidentRepository(session)
            incident = await repo.get(incident_id)
            if incident is None:
                raise NotFound(f"No incident with id {incident_id}")
            alerts = await repo.alerts_of(incident_id)
            deliveries = await DeliveryRepository(session).for_alerts([a.id for a in alerts])
        return IncidentDetail.model_validate(
            {
                **incident_out(incident).model_dump(),
                "alerts": [alert_out(a, deliveries[a.id]) for a in alerts],
            }
        )

    async def acknowledge(
        self,
        incident_id: uuid.UUID,
        who: str,
        via: AckVia = AckVia.api,
        channel: str | None = None,
        now: datetime | None = None,
    ) -> tuple[IncidentDetail, bool]:
        """The first acknowledgement stands; returns the incident and whether this call
        was the one that acknowledged it."""
        now = now or utcnow()
        async with self.db.sessions.begin() as session:
            repo = IncidentRepository(session)
            if await repo.get(incident_id) is None:
                raise NotFound(f"No incident with id {incident_id}")
            won = await repo.acknowledge(incident_id, now, who, via.value, channel)
        if won:
            logger.info("incident {} acknowledged via {}", incident_id, via.value)
        return await self.get(incident_id), won


class IncidentKeeper:
    """Housekeeper: incident updates, resolves and escalation steps, and flapping sources
    that became stable. Safe in several processes: each write is won by one conditional
    UPDATE, and the delivery primary key (alert, channel, stage) refuses a second row."""

    name = "incidents"

    def __init__(self, database: Database, settings: AlertSettings) -> None:
        self.db = database
        self.settings = settings

    async def run(self, now: datetime) -> int:
        created = await self.updates(now)
        created += await self.resolves(now)
        created += await self.escalations(now)
        await self.stable_sources(now)
        return created

    @staticmethod
    async def _channels(deliveries: DeliveryRepository, incident: Incident) -> list[str]:
        """The channels the incident's first message went to."""
        assert incident.first_alert_id is not None
        rows = await deliveries.for_alert(incident.first_alert_id)
        return [d.channel for d in rows if d.stage == DeliveryStage.notify.value]

    async def updates(self, now: datetime) -> int:
        cutoff = now - timedelta(seconds=self.settings.incident_update_interval_secs)
        created = 0
        async with self.db.sessions.begin() as session:
            repo, deliveries = IncidentRepository(session), DeliveryRepository(session)
            for incident in await repo.due_for_update(cutoff, BATCH):
                first = incident.first_alert_id
                assert first is not None  # due_for_update selects only these
                channels = await self._channels(deliveries, incident)
                if not await repo.mark_updated(incident, now):
                    continue
                stage = stage_name(DeliveryStage.update, incident.updates_sent + 1)
                for channel in channels:
                    deliveries.add(pending_delivery(first, channel, stage, now))
                    created += 1
        return created

    async def resolves(self, now: datetime) -> int:
        window = self.settings.incident_group_window_secs
        cutoff = now - timedelta(seconds=window)
        created = 0
        async with self.db.sessions.begin() as session:
            repo, deliveries = IncidentRepository(session), DeliveryRepository(session)
            # Outage incidents resolve with their recovery notice, not by time.
            kinds = [AlertKind.abnormal_episode.value]
            for incident in await repo.due_to_resolve(cutoff, kinds, BATCH):
                if not await repo.resolve(incident.id, now, cutoff):
                    continue
                if window <= 0 or incident.first_alert_id is None:
                    continue  # no grouping: each alert is its own story, no resolve message
                for channel in await self._channels(deliveries, incident):
                    deliveries.add(
                        pending_delivery(
                            incident.first_alert_id, channel, DeliveryStage.resolve, now
                        )
                    )
                    created += 1
        return created

    async def escalations(self, now: datetime) -> int:
        created = 0
        async with self.db.sessions.begin() as session:
            repo, deliveries = IncidentRepository(session), DeliveryRepository(session)
            alerts = AlertRepository(session)
            for incident in await repo.due_for_escalation(now, BATCH):
                chain = EscalationChain.model_validate(incident.escalation)
                number = incident.escalation_steps_done + 1
                _, step = chain.step(number)
                next_at = (
                    incident.opened_at + timedelta(seconds=chain.step(number + 1)[0])
                    if number < chain.total_steps
                    else None
                )
                if not await repo.mark_escalated(incident, now, next_at):
                    continue
                assert incident.first_alert_id is not None
                first = await alerts.get(incident.first_alert_id)
                if first is not None and first.escalated_at is None:
                    first.escalated_at, first.updated_at = now, now
                stage = stage_name(DeliveryStage.escalation, number)
                channels = self.settings.channel_names if "*" in step.channels else step.channels
                for channel in channels:
                    deliveries.add(pending_delivery(incident.first_alert_id, channel, stage, now))
                    created += 1
                logger.info(
                    "incident {} escalated: step {} of {} to {}",
                    incident.id,
                    number,
                    chain.total_steps,
                    ", ".join(channels),
                )
        return created

    async def stable_sources(self, now: datetime) -> int:
        cutoff = now - timedelta(seconds=self.settings.flap_window_secs)
        async with self.db.sessions.begin() as session:
            flaps = FlapRepository(session)
            stable = await flaps.stable_since(cutoff)
            removed = await flaps.remove(stable, cutoff)
        if removed:
            logger.info("{} flapping source(s) stable again", removed)
        return 0
