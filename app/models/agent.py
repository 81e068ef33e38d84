"""Agent credentials (one per video agent, bound to the sources it may speak for) and the
sources an admin registered for offline watching."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Agent(Base):
    """A machine credential: only the SHA-256 of its token is stored (the token is shown
    once); `source_patterns` are globs of the source ids it may post events for."""

    __tablename__ = "agents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    source_patterns: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))
    rotated_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]


class RegisteredSource(Base):
    """A source an admin declared: watched for going offline even without an agent's
    patterns covering it (`watch_offline`)."""

    __tablename__ = "registered_sources"

    source_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    watch_offline: Mapped[bool] = mapped_column(default=True)
    registered_by: Mapped[str | None] = mapped_column(String(80))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
