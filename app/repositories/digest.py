"""SQL for the shift digest: the slot rows that make it once-only, and the period's counts;
never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.alert import Alert, AlertDigest, Incident, IncidentStatus, SourceOutage


class DigestRepository:
    """The `alert_digests` rows and what a digest counts over a period [start, end)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, slot: str) -> bool:
        return await self.session.get(AlertDigest, slot) is not None

    def add(self, digest: AlertDigest) -> None:
        self.session.add(digest)

    async def _count_incidents(self, *where: object) -> int:
        stmt = select(func.count()).select_from(Incident).where(*where)  # type: ignore[arg-type]
        return int((await self.session.execute(stmt)).scalar_one())

    async def opened(self, start: datetime, end: datetime) -> int:
        return await self._count_incidents(Incident.opened_at >= start, Incident.opened_at < end)

    async def resolved(self, start: datetime, end: datetime) -> int:
        return await self._count_incidents(
            Incident.resolved_at >= start, Incident.resolved_at < end
        )

    async def unacknowledged(self, start: datetime, end: datetime) -> int:
        """Incidents nobody acknowledged that were open at `end` or opened or resolved in the
        period."""
        return await self._count_incidents(
            Incident.acked_at.is_(None),
            Incident.opened_at < end,
            or_(
                Incident.status == IncidentStatus.open.value,
                Incident.opened_at >= start,
                and_(Incident.resolved_at >= start, Incident.resolved_at < end),
            ),
        )

    async def offline(self, limit: int = 50) -> list[str]:
        stmt = select(SourceOutage.source_id).order_by(SourceOutage.source_id).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def top_sources(
        self, start: datetime, end: datetime, kinds: Sequence[str], limit: int = 5
    ) -> list[tuple[str, int]]:
        """The sources with the most alerts of `kinds` created in the period."""
        count = func.count().label("n")
        stmt = (
            select(Alert.source_id, count)
            .where(Alert.created_at >= start, Alert.created_at < end, Alert.kind.in_(kinds))
            .group_by(Alert.source_id)
            .order_by(count.desc(), Alert.source_id)
            .limit(limit)
        )
        return [(source, int(n)) for source, n in await self.session.execute(stmt)]
