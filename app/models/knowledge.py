"""Knowledge documents (the source of truth for the vector index) and RAG conversations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from app.models.base import Base, TimestampMixin, utcnow

if TYPE_CHECKING:
    from app.models.feedback import AnswerFeedback


class KnowledgeDocument(TimestampMixin, Base):
    """A document operators can ask about; its chunks live in the vector store."""

    __tablename__ = "knowledge_documents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(300))
    content: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(500))
    # `metadata` is reserved on declarative classes, so the attribute has another name.
    meta: Mapped[dict] = mapped_column("metadata", default=dict)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    indexed_at: Mapped[datetime | None] = mapped_column(default=None)


class Conversation(Base):
    """A thread of questions and answers; recent turns feed the prompt."""

    __tablename__ = "rag_conversations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The user who asked; None for anonymous questions in development (open to anyone there).
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The first question, shortened: filled only by the query that lists conversations.
    title: Mapped[str | None] = query_expression()
    turns: Mapped[list[ConversationTurn]] = relationship(
        back_populates="conversation",
        order_by="ConversationTurn.created_at",
        cascade="all, delete-orphan",
    )


class ConversationTurn(Base):
    """One question and its answer."""

    __tablename__ = "rag_conversation_turns"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rag_conversations.id", ondelete="CASCADE"), index=True
    )
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(120))
    degraded: Mapped[bool] = mapped_column(default=False)
    sources: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    conversation: Mapped[Conversation] = relationship(back_populates="turns")
    # Read-only and never lazy-loaded: only the conversation read asks for it (selectinload).
    feedback: Mapped[AnswerFeedback | None] = relationship(viewonly=True, lazy="raise")

    @property
    def source_items(self) -> list[dict[str, Any]]:
        """The sources as stored: `{"items": [...]}` (an object, so the column can grow)."""
        return list((self.sources or {}).get("items", []))


class KnowledgeChunk(Base):
    """One section-aware passage of a document, with its ranking tokens.

    The database holds every chunk so that each process can rebuild (and catch up) its
    in-memory lexical index without re-tokenizing, and so that a vector whose id is not
    here never reaches an answer. The id is derived from the document, offsets and text, so
    re-chunking unchanged text gives the same ids (the vector store keeps them).
    """

    __tablename__ = "knowledge_chunks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    doc_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(500), default="")
    start_offset: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    # The page the chunk starts on (1-based), for documents made from a paged file (PDF).
    page: Mapped[int | None] = mapped_column(Integer, default=None)
    # Space-separated tokens of `section` + `text` (see app.core.tokenizer).
    tokens: Mapped[str] = mapped_column(Text, default="")


class KnowledgeIndexChange(Base):
    """A change to the knowledge index: a document's chunks changed (or the index switched).

    Every process keeps the highest `seq` it has applied and, before a search, applies the
    rows after it; that is how its lexical index follows writes made by other processes.
    """

    __tablename__ = "knowledge_index_changes"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeIndexState(Base):
    """Small named values of the index: its `generation` and the active vector `collection`."""

    __tablename__ = "knowledge_index_state"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
