"""SQL for the alert outbox and the stored Kakao credentials; never commits."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.alert import Alert, KakaoCredential
from app.repositories.events import _before, encode_cursor


class AlertRepository:
    """The `alerts` table, including the claim that makes delivery safe across processes."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, alert: Alert) -> None:
        self.session.add(alert)

    async def get(self, alert_id: uuid.UUID) -> Alert | None:
        return await self.session.get(Alert, alert_id)

    async def for_episode(self, episode_id: uuid.UUID) -> Alert | None:
        stmt = select(Alert).where(Alert.episode_id == episode_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def for_episodes(self, episode_ids: list[uuid.UUID]) -> dict[uuid.UUID, Alert]:
        if not episode_ids:
            return {}
        stmt = select(Alert).where(Alert.episode_id.in_(episode_ids))
        return {row.episode_id: row for row in (await self.session.execute(stmt)).scalars()}

    async def last_unsuppressed_since(self, source_id: str, since: datetime) -> Alert | None:
        stmt = (
            select(Alert)
            .where(
                Alert.source_id == source_id,
                Alert.status != "suppressed",
                Alert.created_at >= since,
            )
            .order_by(Alert.created_at.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def claim_due(self, now: datetime, lease_secs: float, limit: int) -> list[Alert]:
        """Move up to `limit` due alerts to `sending` and return them.

        One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) statement: on PostgreSQL
        concurrent dispatchers skip each other's rows; on SQLite the single statement takes the
        write lock first, so two processes can never claim the same row either. A `sending`
        row whose lease ran out (its dispatcher died) is claimable again.
        """
        due = or_(
            and_(
                Alert.status == "pending",
                or_(Alert.next_attempt_at.is_(None), Alert.next_attempt_at <= now),
            ),
            and_(Alert.status == "sending", Alert.claimed_until < now),
        )
        candidates = (
            select(Alert.id)
            .where(due)
            .order_by(Alert.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(Alert)
            .where(Alert.id.in_(candidates), due)
            .values(
                status="sending",
                claimed_until=now + timedelta(seconds=lease_secs),
                attempts=Alert.attempts + 1,
                updated_at=now,
            )
            .returning(Alert)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def finish(self, alert_id: uuid.UUID, now: datetime, **values: object) -> bool:
        """Record the outcome of a claimed alert (only while it is still ours: `sending`)."""
        stmt = (
            update(Alert)
            .where(Alert.id == alert_id, Alert.status == "sending")
            .values(updated_at=now, claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        result = cast(CursorResult[Any], await self.session.execute(stmt))
        return result.rowcount == 1

    async def pending_stats(self) -> tuple[int, datetime | None]:
        stmt = select(func.count(), func.min(Alert.created_at)).where(
            Alert.status.in_(("pending", "sending"))
        )
        count, oldest = (await self.session.execute(stmt)).one()
        return int(count), oldest

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        status: str | None = None,
        source_id: str | None = None,
    ) -> tuple[list[Alert], str | None]:
        stmt = select(Alert)
        if status:
            stmt = stmt.where(Alert.status == status)
        if source_id:
            stmt = stmt.where(Alert.source_id == source_id)
        keyset = _before(Alert.created_at, Alert.id, cursor)
        if keyset is not None:
            stmt = stmt.where(keyset)
        stmt = stmt.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit + 1)
        rows = list((await self.session.execute(stmt)).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more else None
        return rows, next_cursor


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
