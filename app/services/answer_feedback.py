"""Ratings of the assistant's answers, and the 👎 corrections as retrieval-eval questions."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from app.core.database import Database
from app.core.errors import NotFound, ValidationFailed
from app.core.security import Principal
from app.models.base import utcnow
from app.models.feedback import AnswerFeedback, Rating
from app.repositories.answer_feedback import AnswerFeedbackRepository
from app.repositories.conversations import ConversationRepository


@dataclass(frozen=True, slots=True)
class Correction:
    """A 👎 answer and the document that should have answered it (an eval question)."""

    question: str
    doc: str


class FeedbackService:
    """👍/👎 on recorded answers; only the conversation's owner may rate."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def rate(
        self,
        conversation_id: uuid.UUID,
        turn_id: uuid.UUID,
        rating: Rating,
        comment: str | None,
        doc_id: uuid.UUID | None,
        caller: Principal | None = None,
    ) -> AnswerFeedback:
        """Record (or replace) the rating of one answer.

        `caller` None is an anonymous caller in development, where conversations are open;
        otherwise only the owner may rate, and someone else's conversation reads as missing.
        """
        async with self.db.sessions.begin() as session:
            owner = await ConversationRepository(session).owner(conversation_id)
            if owner is None or (caller is not None and owner[0] != caller.user_id):
                raise NotFound(
                    f"No conversation with id {conversation_id}", code="conversation_not_found"
                )
            repo = AnswerFeedbackRepository(session)
            if not await repo.has_turn(conversation_id, turn_id):
                raise NotFound(
                    f"No answer with id {turn_id} in conversation {conversation_id}",
                    code="turn_not_found",
                )
            if doc_id is not None and not await repo.has_document(doc_id):
                raise ValidationFailed(
                    f"doc_id {doc_id} is not a knowledge document; name an existing "
                    "document or leave doc_id out",
                    code="unknown_document",
                )
            feedback = await repo.for_turn(turn_id)
            if feedback is None:
                feedback = await repo.add(
                    AnswerFeedback(turn_id=turn_id, rating=rating, comment=comment, doc_id=doc_id)
                )
            else:
                # Rating again replaces the whole rating; created_at stays, updated_at moves
                # (set here too, so that the same rating given twice still shows when).
                feedback.rating, feedback.comment, feedback.doc_id = rating, comment, doc_id
                feedback.updated_at = utcnow()
                await session.flush()
        return feedback

    async def corrections(self) -> list[Correction]:
        """Every 👎 that names the right document, oldest first."""
        async with self.db.sessions() as session:
            rows = await AnswerFeedbackRepository(session).corrections()
        return [Correction(question, doc) for question, doc in rows]

    async def export_eval_cases(self, path: Path) -> int:
        """Write the corrections as `eval-retrieval --data` JSONL; returns how many."""
        cases = await self.corrections()
        text = "".join(
            json.dumps({"question": c.question, "doc": c.doc}, ensure_ascii=False) + "\n"
            for c in cases
        )
        await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        return len(cases)
