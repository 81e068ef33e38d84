"""The alert outbox (alerts, one delivery per channel), silences, routes, offline-source
state and the stored (encrypted) Kakao credentials."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TimestampMixin, utcnow
from app.models.event import Episode


class AlertKind(StrEnum):
    """What an alert is about; routes select on it."""

    abnormal_episode = "abnormal_episode"
    source_offline = "source_offline"
    source_recovered = "source_recovered"
    delivery_failure = "delivery_failure"
    job_failed = "job_failed"


class AlertStatus(StrEnum):
    """An alert's status, summarising its deliveries (or why it has none)."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    partial = "partial"  # some channels delivered, at least one failed for good
    failed = "failed"
    undeliverable = "undeliverable"
    suppressed = "suppressed"  # per-source cooldown or the global hourly budget
    silenced = "silenced"  # matched a silence


class DeliveryStatus(StrEnum):
    """One channel's delivery of one alert."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    undeliverable = "undeliverable"  # the channel is not configured


class DeliveryStage(StrEnum):
    """The first notification, or the one escalation step of an unacknowledged alert."""

    notify = "notify"
    escalation = "escalation"


class Alert(TimestampMixin, Base):
    """One alert, written in the same transaction as what caused it (an episode close, a
    source going quiet). Its `status`, `attempts`, `last_error` and `sent_at` summarise its
    deliveries; every channel has its own row in `alert_deliveries`.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_source_id_created_at", "source_id", "created_at"),
        Index("ix_alerts_created_at", "created_at"),
        Index("ix_alerts_status_created_at", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(32), default=AlertKind.abnormal_episode.value)
    episode_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("episodes.id", ondelete="CASCADE"), unique=True
    )
    source_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.pending.value)
    label: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[datetime | None]
    text: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(320))
    escalated_at: Mapped[datetime | None]
    # Never loaded; declared so one flush inserts the episode before its alert.
    episode: Mapped[Episode | None] = relationship(lazy="raise")


class AlertDelivery(TimestampMixin, Base):
    """The outbox row of one (alert, channel, stage): own attempts, backoff and last error.

    status: pending → sending → sent | failed | undeliverable. `claimed_until` is the lease of
    the dispatcher sending it; a lapsed lease makes it claimable again.
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        Index(
            "ix_alert_deliveries_channel_status_next_attempt_at",
            "channel",
            "status",
            "next_attempt_at",
        ),
    )

    alert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    stage: Mapped[str] = mapped_column(
        String(16), primary_key=True, default=DeliveryStage.notify.value
    )
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    # Never loaded; declared so one flush inserts the alert before its deliveries.
    alert: Mapped[Alert] = relationship(lazy="raise")


class AlertSilence(Base):
    """Alerts whose source matches `source_pattern` (a glob) are recorded as silenced until
    `ends_at`."""

    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_ends_at", "ends_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_pattern: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertRoute(Base):
    """One routing rule set through the admin API: these channels get alerts of these kinds
    from sources matching the glob. Rules are a union; none stored means the file or default."""

    __tablename__ = "alert_routes"

    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source_pattern: Mapped[str] = mapped_column(String(128), default="*")
    kinds: Mapped[list] = mapped_column(JSON)
    channels: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SourceOutage(Base):
    """A monitored source that is down: one row while it stays quiet (the primary key makes a
    second `source_offline` alert impossible); removed when the recovery notice is written."""

    __tablename__ = "source_outages"

    source_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    offline_since: Mapped[datetime]
    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Never loaded; declared so one flush inserts the alert before the outage row.
    alert: Mapped[Alert | None] = relationship(lazy="raise")


class KakaoCredential(TimestampMixin, Base):
    """The Kakao tokens, Fernet-encrypted; `seed_fingerprint` notices a changed env token."""

    __tablename__ = "kakao_credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default="default")
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    seed_fingerprint: Mapped[str | None] = mapped_column(String(64))
    access_expires_at: Mapped[datetime | None]
