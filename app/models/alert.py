"""The alert outbox and the stored (encrypted) Kakao credentials."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TimestampMixin
from app.models.event import Episode


class Alert(TimestampMixin, Base):
    """One alert per abnormal episode, written in the same transaction as the episode close.

    status: pending → sending → sent | failed | undeliverable, or suppressed (cooldown) from
    the start. `claimed_until` is the lease of the dispatcher that is sending it.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_alerts_source_id_created_at", "source_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    episode_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("episodes.id", ondelete="CASCADE"), unique=True
    )
    source_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    label: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    # Never loaded; declared so one flush inserts the episode before its alert.
    episode: Mapped[Episode] = relationship(lazy="raise")


class KakaoCredential(TimestampMixin, Base):
    """The Kakao tokens, Fernet-encrypted; `seed_fingerprint` notices a changed env token."""

    __tablename__ = "kakao_credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default="default")
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    seed_fingerprint: Mapped[str | None] = mapped_column(String(64))
    access_expires_at: Mapped[datetime | None]
