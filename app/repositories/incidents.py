"""SQL for incidents and flapping sources; never commits. Every state change another process
could race is one conditional UPDATE whose row count says who won."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import affected_rows
from app.models.alert import (
    Alert,
    AlertDelivery,
    DeliveryStage,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    SourceFlap,
    SourceOutage,
)
from app.models.event import Episode
from app.repositories.pagination import Page, keyset_page


class IncidentRepository:
    """Incidents: the open one of a (source, kind), pages, and the conditional transitions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, incident: Incident) -> None:
        self.session.add(incident)

    async def get(self, incident_id: uuid.UUID) -> Incident | None:
        return await self.session.get(Incident, incident_id)

    async def get_for_update(self, incident_id: uuid.UUID) -> Incident | None:
        stmt = select(Incident).where(Incident.id == incident_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def open_for(self, source_id: str, kind: str, since: datetime) -> Incident | None:
        """The open incident of this source and kind whose last alert is at or after `since`."""
        stmt = (
            select(Incident)
            .where(
                Incident.source_id == source_id,
                Incident.kind == kind,
                Incident.status == IncidentStatus.open.value,
                Incident.last_alert_at >= since,
            )
            .order_by(Incident.opened_at.desc())
            .limit(1)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def join(
        self, incident_id: uuid.UUID, now: datetime, score: float | None, label: str | None
    ) -> None:
        values: dict[str, Any] = {
            "alert_count": Incident.alert_count + 1,
            "last_alert_at": now,
            "updated_at": now,
        }
        if score is not None:
            values["max_score"] = func.coalesce(
                func.max(Incident.max_score, score)
                if self.session.get_bind().dialect.name == "sqlite"
                else func.greatest(Incident.max_score, score),
                score,
            )
        if label is not None:
            values["label"] = func.coalesce(Incident.label, label)
        stmt = (
            update(Incident)
            .where(Incident.id == incident_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None,
        status: str | None,
        source_id: str | None,
        kind: str | None,
    ) -> Page[Incident]:
        stmt = select(Incident)
        if status is not None:
            stmt = stmt.where(Incident.status == status)
        if source_id is not None:
            stmt = stmt.where(Incident.source_id == source_id)
        if kind is not None:
            stmt = stmt.where(Incident.kind == kind)
        return await keyset_page(
            self.session,
            stmt,
            at=Incident.opened_at,
            row_id=Incident.id,
            limit=limit,
            cursor=cursor,
        )

    async def alerts_of(self, incident_id: uuid.UUID, limit: int = 200) -> list[Alert]:
        stmt = (
            select(Alert)
            .where(Alert.incident_id == incident_id)
            .order_by(Alert.created_at, Alert.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def due_to_resolve(
        self, cutoff: datetime, kinds: Sequence[str], limit: int
    ) -> list[Incident]:
        stmt = (
            select(Incident)
            .where(
                Incident.status == IncidentStatus.open.value,
                Incident.kind.in_(kinds),
                Incident.last_alert_at <= cutoff,
            )
            .order_by(Incident.last_alert_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def resolve(
        self, incident_id: uuid.UUID, now: datetime, quiet_since: datetime | None
    ) -> bool:
        """open → resolved, once; with `quiet_since`, only if no alert joined after it."""
        cond = [Incident.id == incident_id, Incident.status == IncidentStatus.open.value]
        if quiet_since is not None:
            cond.append(Incident.last_alert_at <= quiet_since)
        stmt = (
            update(Incident)
            .where(*cond)
            .values(status=IncidentStatus.resolved.value, resolved_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return affected_rows(cast(CursorResult[Any], await self.session.execute(stmt))) == 1

    async def due_for_update(self, cutoff: datetime, limit: int) -> list[Incident]:
        """Open incidents with alerts nobody was told about, last told before `cutoff`."""
        stmt = (
            select(Incident)
            .where(
                Incident.status == IncidentStatus.open.value,
                Incident.alert_count > Incident.notified_count,
                func.coalesce(Incident.last_update_at, Incident.opened_at) <= cutoff,
                Incident.first_alert_id.is_not(None),
            )
            .order_by(Incident.last_alert_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def mark_updated(self, incident: Incident, now: datetime) -> bool:
        """Count one more update, once (`updates_sent` moves only from the value we read)."""
        stmt = (
            update(Incident)
            .where(Incident.id == incident.id, Incident.updates_sent == incident.updates_sent)
            .values(
                updates_sent=incident.updates_sent + 1,
                notified_count=Incident.alert_count,
                last_update_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return affected_rows(cast(CursorResult[Any], await self.session.execute(stmt))) == 1

    async def due_for_escalation(self, now: datetime, limit: int) -> list[Incident]:
        """Unacknowledged incidents whose next escalation step is due (indexed)."""
        stmt = (
            select(Incident)
            .where(
                Incident.escalation_next_at <= now,
                Incident.acked_at.is_(None),
                Incident.first_alert_id.is_not(None),
            )
            .order_by(Incident.escalation_next_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def mark_escalated(
        self, incident: Incident, now: datetime, next_at: datetime | None
    ) -> bool:
        """Count one more step written, once; `next_at` is when the following one is due."""
        stmt = (
            update(Incident)
            .where(
                Incident.id == incident.id,
                Incident.acked_at.is_(None),
                Incident.escalation_steps_done == incident.escalation_steps_done,
            )
            .values(
                escalation_steps_done=incident.escalation_steps_done + 1,
                escalation_next_at=next_at,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return affected_rows(cast(CursorResult[Any], await self.session.execute(stmt))) == 1

    async def acknowledge(
        self,
        incident_id: uuid.UUID,
        now: datetime,
        who: str,
        via: str,
        channel: str | None,
    ) -> bool:
        """Record the first acknowledgement (later ones change nothing); its alerts follow,
        and escalation deliveries not yet sent are cancelled in the same transaction."""
        stmt = (
            update(Incident)
            .where(Incident.id == incident_id, Incident.acked_at.is_(None))
            .values(
                acked_at=now,
                acked_by=who,
                acked_via=via,
                acked_channel=channel,
                escalation_next_at=None,  # the chain stops here
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        won = affected_rows(cast(CursorResult[Any], await self.session.execute(stmt))) == 1
        if not won:
            return False
        await self.session.execute(
            update(Alert)
            .where(Alert.incident_id == incident_id, Alert.acked_at.is_(None))
            .values(acked_at=now, acked_by=who, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            update(AlertDelivery)
            .where(
                AlertDelivery.alert_id.in_(
                    select(Alert.id).where(Alert.incident_id == incident_id)
                ),
                AlertDelivery.stage.like(f"{DeliveryStage.escalation.value}%"),
                AlertDelivery.status == DeliveryStatus.pending.value,
            )
            .values(
                status=DeliveryStatus.cancelled.value, updated_at=now, last_error="acknowledged"
            )
            .execution_options(synchronize_session=False)
        )
        return True

    async def outage_of(self, patterns: Sequence[str]) -> SourceOutage | None:
        """The oldest current outage of a source matching one of these ids/globs."""
        from fnmatch import fnmatchcase

        exact = [p for p in patterns if not any(c in p for c in "*?[")]
        globs = [p for p in patterns if p not in exact]
        stmt = select(SourceOutage).order_by(SourceOutage.offline_since)
        if not globs:
            stmt = stmt.where(SourceOutage.source_id.in_(exact))
        rows = list((await self.session.execute(stmt.limit(1000))).scalars())
        for row in rows:
            if row.source_id in exact or any(fnmatchcase(row.source_id, g) for g in globs):
                return row
        return None


class FlapRepository:
    """Flapping sources and the episode history that decides it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, source_id: str) -> SourceFlap | None:
        return await self.session.get(SourceFlap, source_id)

    def add(self, flap: SourceFlap) -> None:
        self.session.add(flap)

    async def recent_decisions(self, source_id: str, limit: int) -> list[tuple[datetime, bool]]:
        """The source's latest closed episodes, newest first: (ended_at, abnormal)."""
        stmt = (
            select(Episode.ended_at, Episode.decision)
            .where(
                Episode.source_id == source_id,
                Episode.ended_at.is_not(None),
                Episode.decision.in_(("normal", "abnormal")),
            )
            .order_by(Episode.ended_at.desc())
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        return [(r[0], r[1] == "abnormal") for r in rows if r[0] is not None]

    async def touch(self, source_id: str, now: datetime, changes: int) -> None:
        await self.session.execute(
            update(SourceFlap)
            .where(SourceFlap.source_id == source_id)
            .values(last_change_at=now, changes=changes)
            .execution_options(synchronize_session=False)
        )

    async def stable_since(self, cutoff: datetime, limit: int = 500) -> list[str]:
        stmt = select(SourceFlap.source_id).where(SourceFlap.last_change_at <= cutoff).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def remove(self, source_ids: Sequence[str], cutoff: datetime) -> int:
        if not source_ids:
            return 0
        stmt = delete(SourceFlap).where(
            and_(SourceFlap.source_id.in_(list(source_ids)), SourceFlap.last_change_at <= cutoff)
        )
        return affected_rows(cast(CursorResult[Any], await self.session.execute(stmt)))
