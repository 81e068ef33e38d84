"""Learning from operators: labels on episodes (with every change kept) and the behaviour
model's versions (weights in the database, so every replica reads the same ones)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class ModelOrigin(StrEnum):
    """Where a version came from."""

    SHIPPED = "shipped"  # the checkpoint file the server was started with
    RETRAINED = "retrained"  # a retraining job on operators' labels


class EpisodeLabel(Base):
    """An operator's word on what an episode really was; the last word wins."""

    __tablename__ = "episode_labels"

    episode_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("episodes.id", ondelete="CASCADE"), primary_key=True
    )
    # Denormalised from the episode: the per-source summary reads this table alone.
    source_id: Mapped[str] = mapped_column(String(128), index=True)
    label: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    labelled_by: Mapped[str] = mapped_column(String(80))
    labelled_at: Mapped[datetime] = mapped_column(default=utcnow)
    changes: Mapped[int] = mapped_column(Integer, default=1)


class EpisodeLabelChange(Base):
    """One change of an episode's label (audit: who, when, old → new)."""

    __tablename__ = "episode_label_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    episode_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("episodes.id", ondelete="CASCADE"), index=True
    )
    old_label: Mapped[str | None] = mapped_column(String(64), default=None)
    new_label: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    changed_by: Mapped[str] = mapped_column(String(80))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """One behaviour checkpoint (~50 KB for the student) and what it was trained on."""

    __tablename__ = "model_versions"

    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80), default=None)
    origin: Mapped[ModelOrigin] = mapped_column(
        Enum(
            ModelOrigin,
            name="model_origin",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    parent_version: Mapped[str | None] = mapped_column(String(64), default=None)
    checkpoint: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    labels: Mapped[list] = mapped_column(JSON)
    normal_labels: Mapped[list] = mapped_column(JSON)
    threshold: Mapped[float]
    data_fingerprint: Mapped[str] = mapped_column(String(80), default="")
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    trained_on: Mapped[dict] = mapped_column(JSON, default=dict)


class ModelActivation(Base):
    """A version made active (the latest row names the active version); kept for audit."""

    __tablename__ = "model_activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_version: Mapped[str] = mapped_column(
        ForeignKey("model_versions.model_version", ondelete="CASCADE"), index=True
    )
    previous_version: Mapped[str | None] = mapped_column(String(64), default=None)
    activated_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_by: Mapped[str | None] = mapped_column(String(80), default=None)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    gate: Mapped[dict | None] = mapped_column(JSON, default=None)
