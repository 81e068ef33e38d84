"""SQL for the alert outbox (alerts and their per-channel deliveries), silences, routes,
source outages and the stored Kakao credentials; never commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import affected_rows
from app.models.alert import (
    Alert,
    AlertDelivery,
    AlertKind,
    AlertRoute,
    AlertSilence,
    AlertStatus,
    DeliveryStatus,
    KakaoCredential,
    SourceOutage,
)
from app.models.event import Source
from app.repositories.pagination import Page, keyset_page

# Statuses of alerts that were meant to reach someone (the cooldown and budget count these).
QUIET = (
    AlertStatus.suppressed.value,
    AlertStatus.silenced.value,
    AlertStatus.grouped.value,
    AlertStatus.inhibited.value,
)


class AlertRepository:
    """The `alerts` table: one row per alert with its summary status."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, alert: Alert) -> None:
        self.session.add(alert)

    async def get(self, alert_id: uuid.UUID) -> Alert | None:
        return await self.session.get(Alert, alert_id)

    async def get_for_update(self, alert_id: uuid.UUID) -> Alert | None:
        """The row, locked until commit on PostgreSQL (summaries are recomputed under it)."""
        stmt = (
            select(Alert)
            .where(Alert.id == alert_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def for_episode(self, episode_id: uuid.UUID) -> Alert | None:
        stmt = select(Alert).where(Alert.episode_id == episode_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def for_episodes(self, episode_ids: list[uuid.UUID]) -> dict[uuid.UUID, Alert]:
        if not episode_ids:
            return {}
        stmt = select(Alert).where(Alert.episode_id.in_(episode_ids))
        rows = (await self.session.execute(stmt)).scalars()
        return {row.episode_id: row for row in rows if row.episode_id is not None}

    async def last_unsuppressed_since(self, source_id: str, since: datetime) -> Alert | None:
        """The source's latest abnormal-episode alert since `since` that was meant to be sent."""
        stmt = (
            select(Alert)
            .where(
                Alert.source_id == source_id,
                Alert.kind == AlertKind.abnormal_episode.value,
                Alert.status.not_in(QUIET),
                Alert.created_at >= since,
            )
            .order_by(Alert.created_at.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def count_sendable_since(self, since: datetime, source_id: str | None = None) -> int:
        """Alerts created since `since` that were not suppressed or silenced (the budgets),
        of one source when `source_id` is given."""
        stmt = select(func.count()).where(Alert.created_at >= since, Alert.status.not_in(QUIET))
        if source_id is not None:
            stmt = stmt.where(Alert.source_id == source_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def mark_claimed(self, alert_ids: Iterable[uuid.UUID], now: datetime) -> None:
        """A delivery of these alerts is being sent: `sending` wins over every other summary."""
        ids = list(set(alert_ids))
        if not ids:
            return
        stmt = (
            update(Alert)
            .where(Alert.id.in_(ids), Alert.status.in_(("pending", "sending")))
            .values(status=AlertStatus.sending.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def due_for_escalation(
        self, cutoff: datetime, kinds: list[str], limit: int
    ) -> list[Alert]:
        stmt = (
            select(Alert)
            .where(
                Alert.created_at <= cutoff,
                Alert.acked_at.is_(None),
                Alert.escalated_at.is_(None),
                Alert.kind.in_(kinds),
                Alert.status.not_in((*QUIET, AlertStatus.undeliverable.value)),
            )
            .order_by(Alert.created_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def mark_escalated(self, alert_id: uuid.UUID, now: datetime) -> bool:
        """Set `escalated_at` once; False when another process (or an ack) got there first."""
        stmt = (
            update(Alert)
            .where(Alert.id == alert_id, Alert.escalated_at.is_(None), Alert.acked_at.is_(None))
            .values(escalated_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        result = cast(CursorResult[Any], await self.session.execute(stmt))
        return affected_rows(result) == 1

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        status: str | None = None,
        source_id: str | None = None,
        kind: str | None = None,
    ) -> Page[Alert]:
        """Alerts newest first, filtered, after `cursor`."""
        stmt = select(Alert)
        if status:
            stmt = stmt.where(Alert.status == status)
        if source_id:
            stmt = stmt.where(Alert.source_id == source_id)
        if kind:
            stmt = stmt.where(Alert.kind == kind)
        return await keyset_page(
            self.session, stmt, at=Alert.created_at, row_id=Alert.id, limit=limit, cursor=cursor
        )


class DeliveryRepository:
    """The `alert_deliveries` outbox, including the claim that makes delivery safe across
    processes: one row per (alert, channel, stage)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, delivery: AlertDelivery) -> None:
        self.session.add(delivery)

    async def for_alert(self, alert_id: uuid.UUID) -> list[AlertDelivery]:
        stmt = (
            select(AlertDelivery)
            .where(AlertDelivery.alert_id == alert_id)
            .order_by(AlertDelivery.stage.desc(), AlertDelivery.channel)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def for_alerts(self, alert_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[AlertDelivery]]:
        out: dict[uuid.UUID, list[AlertDelivery]] = {i: [] for i in alert_ids}
        if not alert_ids:
            return out
        stmt = (
            select(AlertDelivery)
            .where(AlertDelivery.alert_id.in_(alert_ids))
            .order_by(AlertDelivery.stage.desc(), AlertDelivery.channel)
        )
        for row in (await self.session.execute(stmt)).scalars():
            out[row.alert_id].append(row)
        return out

    async def claim_due(
        self, channel: str, now: datetime, lease_secs: float, limit: int
    ) -> list[AlertDelivery]:
        """Move up to `limit` due deliveries of `channel` to `sending` and return them.

        One UPDATE … WHERE key IN (SELECT … FOR UPDATE SKIP LOCKED): on PostgreSQL concurrent
        dispatchers skip each other's rows; on SQLite the single statement takes the write
        lock first, so two processes never claim the same row. A `sending` row whose lease ran
        out (its dispatcher died) is claimable again.
        """
        due = and_(
            AlertDelivery.channel == channel,
            or_(
                and_(
                    AlertDelivery.status == DeliveryStatus.pending.value,
                    or_(
                        AlertDelivery.next_attempt_at.is_(None),
                        AlertDelivery.next_attempt_at <= now,
                    ),
                ),
                and_(
                    AlertDelivery.status == DeliveryStatus.sending.value,
                    AlertDelivery.claimed_until < now,
                ),
            ),
        )
        candidates = (
            select(AlertDelivery.alert_id, AlertDelivery.stage)
            .where(due)
            .order_by(AlertDelivery.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(AlertDelivery)
            .where(tuple_(AlertDelivery.alert_id, AlertDelivery.stage).in_(candidates), due)
            .values(
                status=DeliveryStatus.sending.value,
                claimed_until=now + timedelta(seconds=lease_secs),
                attempts=AlertDelivery.attempts + 1,
                updated_at=now,
            )
            .returning(AlertDelivery)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        rows = list((await self.session.execute(stmt)).scalars())
        return sorted(rows, key=lambda r: r.created_at)

    async def finish(
        self, delivery: AlertDelivery, now: datetime, claimed_attempts: int, **values: object
    ) -> bool:
        """Record the outcome of a claimed delivery, only while it is still ours (`sending`
        with the attempt count of our claim)."""
        stmt = (
            update(AlertDelivery)
            .where(
                AlertDelivery.alert_id == delivery.alert_id,
                AlertDelivery.channel == delivery.channel,
                AlertDelivery.stage == delivery.stage,
                AlertDelivery.status == DeliveryStatus.sending.value,
                AlertDelivery.attempts == claimed_attempts,
            )
            .values(updated_at=now, claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        return affected_rows(await self.session.execute(stmt)) == 1

    async def pending_stats(self) -> tuple[int, datetime | None, dict[str, int]]:
        active = (DeliveryStatus.pending.value, DeliveryStatus.sending.value)
        stmt = (
            select(AlertDelivery.channel, func.count(), func.min(AlertDelivery.created_at))
            .where(AlertDelivery.status.in_(active))
            .group_by(AlertDelivery.channel)
        )
        per_channel: dict[str, int] = {}
        oldest: datetime | None = None
        for channel, count, first in await self.session.execute(stmt):
            per_channel[channel] = int(count)
            if first is not None and (oldest is None or first < oldest):
                oldest = first
        return sum(per_channel.values()), oldest, per_channel

    async def recent_outcomes(
        self, channels: Sequence[str], limit: int
    ) -> dict[str, list[tuple[str, str | None]]]:
        """Each channel's latest `limit` deliveries that reached its provider (`sent` or
        `failed`; not `undeliverable`, which the configuration check reports), newest first,
        as (status, last_error)."""
        finished = (DeliveryStatus.sent.value, DeliveryStatus.failed.value)
        out: dict[str, list[tuple[str, str | None]]] = {}
        for channel in channels:
            stmt = (
                select(AlertDelivery.status, AlertDelivery.last_error)
                .where(AlertDelivery.channel == channel, AlertDelivery.status.in_(finished))
                .order_by(AlertDelivery.updated_at.desc())
                .limit(limit)
            )
            out[channel] = [(s, e) for s, e in await self.session.execute(stmt)]
        return out


class SilenceRepository:
    """The `alert_silences` table."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, silence: AlertSilence) -> None:
        self.session.add(silence)

    async def get(self, silence_id: uuid.UUID) -> AlertSilence | None:
        return await self.session.get(AlertSilence, silence_id)

    async def end(self, silence_id: uuid.UUID, now: datetime) -> bool:
        """End a silence that has not ended yet (one conditional UPDATE); False otherwise."""
        stmt = (
            update(AlertSilence)
            .where(
                AlertSilence.id == silence_id,
                or_(AlertSilence.ends_at.is_(None), AlertSilence.ends_at > now),
            )
            .values(ends_at=now)
        )
        return affected_rows(await self.session.execute(stmt)) == 1

    async def active(self, now: datetime) -> list[AlertSilence]:
        stmt = (
            select(AlertSilence)
            .where(
                AlertSilence.starts_at <= now,
                or_(
                    AlertSilence.ends_at > now,
                    and_(AlertSilence.ends_at.is_(None), AlertSilence.schedule.is_not(None)),
                ),
            )
            .order_by(AlertSilence.created_at)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def list(self, now: datetime, include_expired: bool) -> list[AlertSilence]:
        stmt = select(AlertSilence)
        if not include_expired:
            stmt = stmt.where(or_(AlertSilence.ends_at.is_(None), AlertSilence.ends_at > now))
        stmt = stmt.order_by(AlertSilence.created_at.desc(), AlertSilence.id).limit(1000)
        return list((await self.session.execute(stmt)).scalars())

    async def recurring_using(self, names: Iterable[str], now: datetime) -> Sequence[AlertSilence]:
        """Recurring silences not yet ended that follow one of these schedules."""
        stmt = (
            select(AlertSilence)
            .where(
                AlertSilence.schedule.in_(list(names)),
                or_(AlertSilence.ends_at.is_(None), AlertSilence.ends_at > now),
            )
            .order_by(AlertSilence.created_at)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def due_reminders(self, now: datetime, lead: timedelta) -> Sequence[AlertSilence]:
        """One-off silences ending within `lead` that started before their reminder time."""
        stmt = select(AlertSilence).where(
            AlertSilence.schedule.is_(None),
            AlertSilence.reminded_at.is_(None),
            AlertSilence.ends_at > now,
            AlertSilence.ends_at <= now + lead,
        )
        rows = (await self.session.execute(stmt.order_by(AlertSilence.ends_at))).scalars()
        return [s for s in rows if s.ends_at is not None and s.starts_at < s.ends_at - lead]

    async def due_summaries(self, now: datetime, horizon: timedelta) -> Sequence[AlertSilence]:
        """One-off silences that ended (no earlier than `horizon` ago) and have no summary."""
        stmt = select(AlertSilence).where(
            AlertSilence.schedule.is_(None),
            AlertSilence.summarised_at.is_(None),
            AlertSilence.ends_at <= now,
            AlertSilence.ends_at > now - horizon,
        )
        return list((await self.session.execute(stmt.order_by(AlertSilence.ends_at))).scalars())

    async def claim_reminder(self, silence_id: uuid.UUID, now: datetime) -> bool:
        """Mark the reminder written; True for exactly one caller across processes."""
        stmt = (
            update(AlertSilence)
            .where(
                AlertSilence.id == silence_id,
                AlertSilence.reminded_at.is_(None),
                AlertSilence.ends_at > now,
            )
            .values(reminded_at=now)
        )
        return affected_rows(await self.session.execute(stmt)) == 1

    async def claim_summary(self, silence_id: uuid.UUID, now: datetime) -> bool:
        """Mark the summary written; True for exactly one caller across processes."""
        stmt = (
            update(AlertSilence)
            .where(
                AlertSilence.id == silence_id,
                AlertSilence.summarised_at.is_(None),
                AlertSilence.ends_at <= now,
            )
            .values(summarised_at=now)
        )
        return affected_rows(await self.session.execute(stmt)) == 1

    async def held_back(self, silence: AlertSilence) -> dict[str, int]:
        """Alerts this silence recorded as `silenced` during its window, counted per kind."""
        stmt = (
            select(Alert.kind, func.count())
            .where(
                Alert.status == AlertStatus.silenced.value,
                Alert.last_error.like(f"silenced by {silence.id} %"),
                Alert.created_at >= silence.starts_at,
            )
            .group_by(Alert.kind)
        )
        if silence.ends_at is not None:
            stmt = stmt.where(Alert.created_at <= silence.ends_at)
        return {kind: int(n) for kind, n in (await self.session.execute(stmt)).all()}


class RouteRepository:
    """The `alert_routes` table (routes set through the admin API)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self) -> list[AlertRoute]:
        stmt = select(AlertRoute).order_by(AlertRoute.position)
        return list((await self.session.execute(stmt)).scalars())

    async def replace(self, routes: Sequence[AlertRoute]) -> None:
        await self.session.execute(delete(AlertRoute))
        self.session.add_all(routes)


class OutageRepository:
    """Monitored sources (at least one heartbeat) and the `source_outages` rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, outage: SourceOutage) -> None:
        self.session.add(outage)

    async def newly_quiet(
        self, cutoff: datetime, limit: int = 500, watched: ColumnElement[bool] | None = None
    ) -> list[Source]:
        """Sources that sent a heartbeat, have been quiet since before `cutoff`, and have no
        outage row yet; only those meeting `watched` when given (see source_monitor)."""
        open_outage = exists().where(SourceOutage.source_id == Source.id)
        stmt = (
            select(Source)
            .where(Source.last_heartbeat_at.is_not(None), Source.last_seen < cutoff, ~open_outage)
            .where(true() if watched is None else watched)
            .order_by(Source.last_seen)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def recovered(self, limit: int = 500) -> list[tuple[SourceOutage, Source]]:
        """Outages whose source has been heard from since it went quiet."""
        stmt = (
            select(SourceOutage, Source)
            .join(Source, Source.id == SourceOutage.source_id)
            .where(Source.last_seen > SourceOutage.offline_since)
            .limit(limit)
        )
        return [(outage, source) for outage, source in await self.session.execute(stmt)]

    async def remove(self, source_id: str) -> bool:
        stmt = delete(SourceOutage).where(SourceOutage.source_id == source_id)
        return affected_rows(await self.session.execute(stmt)) == 1


class CredentialRepository:
    """The single `kakao_credentials` row (encrypted values only)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self) -> KakaoCredential | None:
        return await self.session.get(KakaoCredential, "default")

    async def get_for_update(self) -> KakaoCredential | None:
        stmt = select(KakaoCredential).where(KakaoCredential.id == "default").with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def add(self, row: KakaoCredential) -> None:
        self.session.add(row)
