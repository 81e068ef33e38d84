"""SQL for retention: pick a batch of expired ids, delete them (never commits)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ColumnElement, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import affected_rows
from app.models.alert import Alert, Incident, IncidentStatus
from app.models.event import Episode, EpisodeStatus, Event
from app.models.knowledge import Conversation, ConversationTurn
from app.models.learning import EpisodeLabel
from app.models.usage import LLMUsageDay

HEARTBEAT = "HEARTBEAT"


class RetentionRepository:
    """Batches of rows older than a cutoff, oldest first."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- events and heartbeats (by server receive time: agent clocks may be wrong) -------------

    def _events_where(self, cutoff: datetime, heartbeats: bool) -> ColumnElement[bool]:
        kind = Event.event_type == HEARTBEAT if heartbeats else Event.event_type != HEARTBEAT
        return (Event.received_at < cutoff) & kind

    async def expired_event_ids(
        self, cutoff: datetime, heartbeats: bool, limit: int
    ) -> list[uuid.UUID]:
        stmt = (
            select(Event.id)
            .where(self._events_where(cutoff, heartbeats))
            .order_by(Event.received_at)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def count_events(self, cutoff: datetime, heartbeats: bool) -> int:
        stmt = select(func.count()).select_from(Event).where(self._events_where(cutoff, heartbeats))
        return int(await self.session.scalar(stmt) or 0)

    async def delete_events(self, ids: list[uuid.UUID]) -> int:
        result = await self.session.execute(delete(Event).where(Event.id.in_(ids)))
        return affected_rows(result)

    # -- episodes (closed ones, by end time) with their alerts --------------------------------

    def _expired_episodes(self, cutoff: datetime) -> ColumnElement[bool]:
        return (Episode.status == EpisodeStatus.closed) & (
            func.coalesce(Episode.ended_at, Episode.started_at) < cutoff
        )

    def _episodes_where(self, cutoff: datetime) -> ColumnElement[bool]:
        # A labelled episode stays while it is labelled: its frames are training data.
        labelled = exists().where(EpisodeLabel.episode_id == Episode.id)
        return self._expired_episodes(cutoff) & ~labelled

    async def count_labelled_kept(self, cutoff: datetime) -> int:
        """Expired episodes kept because an operator labelled them."""
        labelled = exists().where(EpisodeLabel.episode_id == Episode.id)
        stmt = (
            select(func.count())
            .select_from(Episode)
            .where(self._expired_episodes(cutoff) & labelled)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def expired_episode_ids(self, cutoff: datetime, limit: int) -> list[uuid.UUID]:
        stmt = (
            select(Episode.id)
            .where(self._episodes_where(cutoff))
            .order_by(Episode.started_at)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def count_episodes(self, cutoff: datetime) -> int:
        stmt = select(func.count()).select_from(Episode).where(self._episodes_where(cutoff))
        return int(await self.session.scalar(stmt) or 0)

    async def delete_episodes(self, ids: list[uuid.UUID]) -> int:
        # Explicit rather than relying on ON DELETE: SQLite may run without foreign keys.
        incident_ids = select(Alert.incident_id).where(
            Alert.episode_id.in_(ids), Alert.incident_id.is_not(None)
        )
        touched = [i for i in (await self.session.scalars(incident_ids)).all() if i is not None]
        await self.session.execute(delete(Alert).where(Alert.episode_id.in_(ids)))
        if touched:
            # A resolved incident whose alerts are all gone goes with them.
            await self.session.execute(
                delete(Incident).where(
                    Incident.id.in_(set(touched)),
                    Incident.status == IncidentStatus.resolved.value,
                    ~exists().where(Alert.incident_id == Incident.id),
                )
            )
        await self.session.execute(
            update(Event).where(Event.episode_id.in_(ids)).values(episode_id=None)
        )
        result = await self.session.execute(delete(Episode).where(Episode.id.in_(ids)))
        return affected_rows(result)

    # -- conversations (no turn newer than the cutoff) ---------------------------------------

    def _conversations_where(self, cutoff: datetime) -> ColumnElement[bool]:
        newer_turn = exists().where(
            (ConversationTurn.conversation_id == Conversation.id)
            & (ConversationTurn.created_at >= cutoff)
        )
        return (Conversation.created_at < cutoff) & ~newer_turn

    async def expired_conversation_ids(self, cutoff: datetime, limit: int) -> list[uuid.UUID]:
        stmt = (
            select(Conversation.id)
            .where(self._conversations_where(cutoff))
            .order_by(Conversation.created_at)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def count_conversations(self, cutoff: datetime) -> int:
        stmt = (
            select(func.count()).select_from(Conversation).where(self._conversations_where(cutoff))
        )
        return int(await self.session.scalar(stmt) or 0)

    async def delete_conversations(self, ids: list[uuid.UUID]) -> int:
        await self.session.execute(
            delete(ConversationTurn).where(ConversationTurn.conversation_id.in_(ids))
        )
        result = await self.session.execute(delete(Conversation).where(Conversation.id.in_(ids)))
        return affected_rows(result)

    # -- LLM usage ledger (by day) -----------------------------------------------------------

    async def count_usage(self, first_kept: date) -> int:
        stmt = select(func.count()).select_from(LLMUsageDay).where(LLMUsageDay.day < first_kept)
        return int(await self.session.scalar(stmt) or 0)

    async def delete_usage(self, first_kept: date) -> int:
        result = await self.session.execute(delete(LLMUsageDay).where(LLMUsageDay.day < first_kept))
        return affected_rows(result)
