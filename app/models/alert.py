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
    source_flapping = "source_flapping"  # episodes flip between normal and abnormal
    maintenance_reminder = "maintenance_reminder"  # a one-off silence ends soon
    maintenance_summary = "maintenance_summary"  # what a silence held back
    digest = "digest"  # the shift-change summary


# Kinds whose alerts group into incidents (same source and kind inside the window).
INCIDENT_KINDS = (AlertKind.abnormal_episode, AlertKind.source_offline)


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
    grouped = "grouped"  # joined an open incident; the incident speaks for it
    inhibited = "inhibited"  # the source's gateway is offline (see `inhibited_by`)


class DeliveryStatus(StrEnum):
    """One channel's delivery of one alert."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    undeliverable = "undeliverable"  # the channel is not configured
    cancelled = "cancelled"  # an escalation step made moot by an acknowledgement


class DeliveryStage(StrEnum):
    """Which message of an alert a delivery carries. Stored stages may carry a number:
    `update:3` (the third "still happening" update of its incident), `escalation:2` (the
    second step of its chain; the first is plain `escalation`)."""

    notify = "notify"
    escalation = "escalation"
    update = "update"
    resolve = "resolve"


def stage_name(stage: DeliveryStage, number: int = 1) -> str:
    """The stored stage: `escalation`, `escalation:2`, `update:1`…"""
    if stage == DeliveryStage.escalation:
        return stage.value if number <= 1 else f"{stage.value}:{number}"
    if stage == DeliveryStage.update:
        return f"{stage.value}:{number}"
    return stage.value


def parse_stage(value: str) -> tuple[DeliveryStage, int]:
    """The inverse of `stage_name`; an unknown stored value reads as `notify`."""
    name, _, number = value.partition(":")
    try:
        stage = DeliveryStage(name)
    except ValueError:
        return DeliveryStage.notify, 1
    return stage, int(number) if number.isdigit() else 1


class IncidentStatus(StrEnum):
    """An incident is open while its alerts keep coming; resolved after a quiet window."""

    open = "open"
    resolved = "resolved"


class AckVia(StrEnum):
    """How an acknowledgement arrived."""

    api = "api"
    console = "console"
    link = "link"


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
    incident_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    # The offline gateway's alert that inhibited this one.
    inhibited_by: Mapped[uuid.UUID | None]
    # Structured details of summary kinds (maintenance summary, digest), rendered per language.
    data: Mapped[dict | None] = mapped_column(JSON)
    # Never loaded; declared so one flush inserts the episode before its alert.
    episode: Mapped[Episode | None] = relationship(lazy="raise")
    # Never loaded; declared so one flush inserts the incident before its first alert.
    incident: Mapped[Incident | None] = relationship(lazy="raise")


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
    """Alerts whose source matches `source_pattern` (a glob) are recorded as silenced: from
    `starts_at` until `ends_at` (one-off), or whenever the named `schedule` is active
    (recurring, `ends_at` null). Ended silences stay (listed as expired)."""

    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_ends_at", "ends_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_pattern: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[datetime | None]
    schedule: Mapped[str | None] = mapped_column(String(64))
    # Set once (conditional UPDATE) when the reminder / the end-of-window summary was written.
    reminded_at: Mapped[datetime | None]
    summarised_at: Mapped[datetime | None]
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
    # The rule's options (schedules, inhibition, escalation chain) as the API gave them.
    options: Mapped[dict | None] = mapped_column(JSON)
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


class Incident(TimestampMixin, Base):
    """Alerts of one source and kind close together in time, told to people as one story:
    the first alert's message, at most one "still happening" update per interval, one
    resolve message. The messages are deliveries of `first_alert_id` (stages notify,
    `update:n`, resolve, escalation…), so the outbox's exactly-once holds for each.
    """

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_source_id_kind_status", "source_id", "kind", "status"),
        Index("ix_incidents_status_last_alert_at", "status", "last_alert_at"),
        Index("ix_incidents_opened_at", "opened_at"),
        Index("ix_incidents_escalation_next_at", "escalation_next_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=IncidentStatus.open.value)
    opened_at: Mapped[datetime]
    last_alert_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    alert_count: Mapped[int] = mapped_column(Integer, default=1)
    # alert_count when the last message (first or update) was written.
    notified_count: Mapped[int] = mapped_column(Integer, default=1)
    max_score: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(64))
    # No foreign key (alerts already point here): a deleted alert leaves a dangling id.
    first_alert_id: Mapped[uuid.UUID | None]
    updates_sent: Mapped[int] = mapped_column(Integer, default=0)
    last_update_at: Mapped[datetime | None]
    # The escalation chain fixed when the incident opened, and how many steps were written.
    escalation: Mapped[dict | None] = mapped_column(JSON)
    escalation_steps_done: Mapped[int] = mapped_column(Integer, default=0)
    # When the next step is due; null once the chain is done or the incident acknowledged.
    escalation_next_at: Mapped[datetime | None]
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(320))
    acked_via: Mapped[str | None] = mapped_column(String(16))  # an AckVia
    acked_channel: Mapped[str | None] = mapped_column(String(32))


class SourceFlap(Base):
    """A source whose episodes flip between normal and abnormal too often: one row while it
    flaps (its abnormal alerts are suppressed); removed once stable for the window."""

    __tablename__ = "source_flaps"

    source_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    since: Mapped[datetime]
    last_change_at: Mapped[datetime]
    changes: Mapped[int] = mapped_column(Integer, default=0)
    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    alert: Mapped[Alert | None] = relationship(lazy="raise")


class AlertSchedule(TimestampMixin, Base):
    """A named recurring time interval in ALERT_TIMEZONE (weekdays × time ranges, overnight
    allowed) with dated exceptions; used by routing rules and recurring silences."""

    __tablename__ = "alert_schedules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    weekdays: Mapped[list] = mapped_column(JSON)
    times: Mapped[list] = mapped_column(JSON)
    exceptions: Mapped[list] = mapped_column(JSON, default=list)


class AckLinkUse(Base):
    """A spent acknowledgement link (by its signature's hash): a link works once."""

    __tablename__ = "ack_link_uses"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    channel: Mapped[str | None] = mapped_column(String(32))
    used_at: Mapped[datetime]


class AlertDigest(Base):
    """One shift digest per slot (its primary key makes a second one impossible)."""

    __tablename__ = "alert_digests"

    slot: Mapped[str] = mapped_column(String(40), primary_key=True)
    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
