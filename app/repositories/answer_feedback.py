"""SQL for answer ratings; never commits (the service owns the transaction)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.feedback import AnswerFeedback, Rating
from app.models.knowledge import ConversationTurn, KnowledgeDocument


class AnswerFeedbackRepository:
    """Queries on `rag_answer_feedback` (and the turns and documents it points at)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def has_turn(self, conversation_id: uuid.UUID, turn_id: uuid.UUID) -> bool:
        """True if `turn_id` is an answer of `conversation_id`."""
        found = await self.session.scalar(
            select(ConversationTurn.id).where(
                ConversationTurn.id == turn_id,
                ConversationTurn.conversation_id == conversation_id,
            )
        )
        return found is not None

    async def has_document(self, doc_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(KnowledgeDocument.id).where(KnowledgeDocument.id == doc_id)
        )
        return found is not None

    async def for_turn(self, turn_id: uuid.UUID) -> AnswerFeedback | None:
        return await self.session.scalar(
            select(AnswerFeedback).where(AnswerFeedback.turn_id == turn_id)
        )

    async def add(self, feedback: AnswerFeedback) -> AnswerFeedback:
        self.session.add(feedback)
        await self.session.flush()
        return feedback

    async def corrections(self) -> list[tuple[str, str]]:
        """(question, title of the document that should have answered) of every 👎 that names
        a document, oldest first."""
        rows = await self.session.execute(
            select(ConversationTurn.question, KnowledgeDocument.title)
            .join(AnswerFeedback, AnswerFeedback.turn_id == ConversationTurn.id)
            .join(KnowledgeDocument, KnowledgeDocument.id == AnswerFeedback.doc_id)
            .where(AnswerFeedback.rating == Rating.DOWN)
            .order_by(AnswerFeedback.created_at, AnswerFeedback.id)
        )
        return [(question, title) for question, title in rows.all()]
