"""Events, the sources that send them, and the episodes they form."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TimestampMixin, utcnow


class EpisodeStatus(StrEnum):
    """Whether an episode still takes events."""

    open = "open"
    closed = "closed"


class CloseReason(StrEnum):
    """Why an episode closed."""

    end = "end"  # its END arrived
    superseded = "superseded"  # a START came first
    end_without_start = "end_without_start"  # an END with no open episode: a one-event episode


class EpisodeDecision(StrEnum):
    """How a closed episode was judged."""

    normal = "normal"
    abnormal = "abnormal"
    unknown = "unknown"  # no sequence and no probabilities to judge from


class DecidedBy(StrEnum):
    """What the decision was made from."""

    sequence = "sequence"  # the behaviour model on the frames
    probs = "probs"  # the agent's probabilities, averaged
    none = "none"


class Source(TimestampMixin, Base):
    """A camera or agent that posts events; `last_seen` drives online/offline."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_event_type: Mapped[str | None] = mapped_column(String(16))
    last_event_at: Mapped[datetime | None]
    # Set by heartbeats; a source with one is watched for going offline (alerts).
    last_heartbeat_at: Mapped[datetime | None]


class Event(Base):
    """One event as the agent sent it; `id` is the idempotency key."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_source_id_occurred_at", "source_id", "occurred_at"),
        Index("ix_events_occurred_at_id", "occurred_at", "id"),
        Index("ix_events_received_at", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    # Part of the key as PostgreSQL has it (partitioned by it, migration 0015): an id repeated
    # after EVENT_DEDUP_DAYS is a second row, and the ORM must not fold the two into one.
    # (SQLite's table keeps `id` alone; Alembic does not compare primary keys.)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, primary_key=True)
    probs: Mapped[dict | None] = mapped_column(JSON)
    sequence: Mapped[list | None] = mapped_column(JSON)
    meta: Mapped[dict | None] = mapped_column("metadata", JSON)
    episode_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("episodes.id", ondelete="SET NULL"), index=True
    )
    # Never loaded; declared so one flush inserts the episode before its events.
    episode: Mapped[Episode | None] = relationship(lazy="raise")


class Episode(TimestampMixin, Base):
    """START → PROBS… → END for one source, with the aggregate and the decision."""

    __tablename__ = "episodes"
    __table_args__ = (
        Index("ix_episodes_source_id_status", "source_id", "status"),
        # The flapping check reads a source's latest closes.
        Index("ix_episodes_source_id_ended_at", "source_id", "ended_at"),
        # The episodes list, newest first (all, or one source's), without sorting the table.
        Index("ix_episodes_started_at_id", "started_at", "id"),
        Index("ix_episodes_source_id_started_at", "source_id", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=EpisodeStatus.open.value)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(32))  # a CloseReason
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    probs_count: Mapped[int] = mapped_column(Integer, default=0)
    probs_sum: Mapped[dict] = mapped_column(JSON, default=dict)
    probs_max: Mapped[dict] = mapped_column(JSON, default=dict)
    out_of_order: Mapped[int] = mapped_column(Integer, default=0)
    sequence: Mapped[list | None] = mapped_column(JSON)
    # The decision, set when the episode closes.
    decision: Mapped[str | None] = mapped_column(String(16))  # an EpisodeDecision
    decided_by: Mapped[str | None] = mapped_column(String(16))  # a DecidedBy
    anomaly_score: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    top_label: Mapped[str | None] = mapped_column(String(64))
    scores: Mapped[dict | None] = mapped_column(JSON)
    model_version: Mapped[str | None] = mapped_column(String(64))
