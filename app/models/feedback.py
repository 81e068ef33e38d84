"""Operators' ratings of the assistant's answers (👍/👎, a comment, the document that should
have answered), one per recorded answer turn."""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin


class Rating(StrEnum):
    """Thumbs up or down."""

    UP = "up"
    DOWN = "down"


class AnswerFeedback(TimestampMixin, Base):
    """The asker's rating of one answer; rating again replaces it (`updated_at` moves)."""

    __tablename__ = "rag_answer_feedback"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # One rating per answer: the turn's owner is the only one who may rate it.
    turn_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rag_conversation_turns.id", ondelete="CASCADE"), unique=True
    )
    rating: Mapped[Rating] = mapped_column(
        Enum(
            Rating,
            name="answer_rating",
            native_enum=False,
            length=8,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    # The document that should have answered (cleared if that document is deleted).
    doc_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="SET NULL"), default=None, index=True
    )
