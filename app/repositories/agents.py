"""Agent credentials, registered sources and the paged source listing; never commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, delete, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import affected_rows
from app.models.agent import Agent, RegisteredSource
from app.models.event import Source
from app.repositories.pagination import Page, keyset_page


def glob_to_like(pattern: str) -> str:
    """An fnmatch glob (`*`, `?` only) as a LIKE pattern with `\\` as the escape character."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class AgentRepository:
    """SQL for the `agents` table."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, agent_id: uuid.UUID) -> Agent | None:
        return await self.session.get(Agent, agent_id)

    async def by_token_hash(self, token_hash: str) -> Agent | None:
        stmt = select(Agent).where(Agent.token_hash == token_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, agent: Agent) -> Agent:
        self.session.add(agent)
        await self.session.flush()
        return agent

    async def all(self) -> list[Agent]:
        return list((await self.session.scalars(select(Agent).order_by(Agent.name))).all())

    async def delete(self, agent_id: uuid.UUID) -> bool:
        result = await self.session.execute(delete(Agent).where(Agent.id == agent_id))
        return affected_rows(result) == 1

    async def all_patterns(self) -> list[str]:
        rows = await self.session.scalars(select(Agent.source_patterns))
        return sorted({p for patterns in rows.all() for p in patterns or []})

    async def touch(self, agent_id: uuid.UUID, now: datetime) -> None:
        stmt = update(Agent).where(Agent.id == agent_id).values(last_seen_at=now)
        await self.session.execute(stmt)


class RegisteredSourceRepository:
    """SQL for `registered_sources` and the source listing that shows them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, source_id: str) -> RegisteredSource | None:
        return await self.session.get(RegisteredSource, source_id)

    def add(self, row: RegisteredSource) -> None:
        self.session.add(row)

    async def delete(self, source_id: str) -> bool:
        stmt = delete(RegisteredSource).where(RegisteredSource.source_id == source_id)
        return affected_rows(await self.session.execute(stmt)) == 1

    async def watched_among(self, source_ids: Iterable[str]) -> set[str]:
        ids = list(source_ids)
        if not ids:
            return set()
        stmt = select(RegisteredSource.source_id).where(
            RegisteredSource.source_id.in_(ids), RegisteredSource.watch_offline.is_(True)
        )
        return set((await self.session.scalars(stmt)).all())

    async def page_sources(self, *, limit: int, cursor: str | None) -> Page[Source]:
        """Sources newest first by when they were first heard from (a key that never moves)."""
        return await keyset_page(
            self.session,
            select(Source),
            at=Source.first_seen,
            row_id=Source.id,
            limit=limit,
            cursor=cursor,
        )


def watched_condition(patterns: list[str]) -> ColumnElement[bool]:
    """SQL for "this source is watched for going offline": registered with `watch_offline`,
    or matched by an agent's pattern (LIKE; callers re-check case with fnmatch)."""
    registered = select(RegisteredSource.source_id).where(RegisteredSource.watch_offline.is_(True))
    clauses: list[ColumnElement[bool]] = [Source.id.in_(registered)]
    clauses += [Source.id.like(glob_to_like(p), escape="\\") for p in patterns]
    return or_(false(), *clauses)
