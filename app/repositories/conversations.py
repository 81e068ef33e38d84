"""SQL for RAG conversations; never commits."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload, with_expression

from app.models.knowledge import Conversation, ConversationTurn

TITLE_CHARS = 120


class ConversationRepository:
    """Queries on `rag_conversations` and their turns."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, conversation_id: uuid.UUID) -> Conversation | None:
        result = await self.session.execute(
            select(Conversation)
            .where(Conversation.id == conversation_id)
            # The read shows each answer's rating: loaded here, never lazily.
            .options(selectinload(Conversation.turns).selectinload(ConversationTurn.feedback))
        )
        return result.scalar_one_or_none()

    async def owner(self, conversation_id: uuid.UUID) -> tuple[uuid.UUID | None] | None:
        """(owner_id,) of an existing conversation, None if there is no such conversation."""
        row = await self.session.get(Conversation, conversation_id)
        return None if row is None else (row.owner_id,)

    async def for_owner(self, owner_id: uuid.UUID | None, limit: int) -> list[Conversation]:
        owned = (
            Conversation.owner_id.is_(None)
            if owner_id is None
            else Conversation.owner_id == owner_id
        )
        # Each with its first question (shortened) as a title the list can show.
        first_question = (
            select(func.substr(ConversationTurn.question, 1, TITLE_CHARS))
            .where(ConversationTurn.conversation_id == Conversation.id)
            .order_by(ConversationTurn.created_at)
            .limit(1)
            .correlate(Conversation)
            .scalar_subquery()
        )
        rows = await self.session.scalars(
            select(Conversation)
            .where(owned)
            .options(with_expression(Conversation.title, first_question))
            .order_by(Conversation.created_at.desc())
            .limit(limit)
        )
        return list(rows.all())

    async def recent_turns(self, conversation_id: uuid.UUID, limit: int) -> list[ConversationTurn]:
        if limit <= 0:
            return []
        rows = await self.session.scalars(
            select(ConversationTurn)
            .where(ConversationTurn.conversation_id == conversation_id)
            .order_by(ConversationTurn.created_at.desc())
            .limit(limit)
        )
        return list(reversed(rows.all()))

    async def add(self, conversation: Conversation) -> Conversation:
        self.session.add(conversation)
        await self.session.flush()
        return conversation

    async def add_turn(self, turn: ConversationTurn) -> None:
        self.session.add(turn)
        await self.session.flush()
