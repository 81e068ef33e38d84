"""events, sources, episodes, the alert outbox and Kakao credentials

Revision ID: 0002_events
Revises: acf37eec6d14
Create Date: 2026-11-25 00:35:10.462081
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0002_events"
down_revision: str | None = "acf37eec6d14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "episodes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.String(length=32), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("probs_count", sa.Integer(), nullable=False),
        sa.Column("probs_sum", sa.JSON(), nullable=False),
        sa.Column("probs_max", sa.JSON(), nullable=False),
        sa.Column("out_of_order", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.JSON(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(length=16), nullable=True),
        sa.Column("anomaly_score", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("top_label", sa.String(length=64), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episodes")),
    )
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.create_index("ix_episodes_source_id_status", ["source_id", "status"], unique=False)

    op.create_table(
        "kakao_credentials",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("access_token_enc", sa.Text(), nullable=True),
        sa.Column("refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("seed_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("access_expires_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kakao_credentials")),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("first_seen", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_event_type", sa.String(length=16), nullable=True),
        sa.Column("last_event_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("episode_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name=op.f("fk_alerts_episode_id_episodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("episode_id", name=op.f("uq_alerts_episode_id")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alerts_source_id_created_at", ["source_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_alerts_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("probs", sa.JSON(), nullable=True),
        sa.Column("sequence", sa.JSON(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("episode_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name=op.f("fk_events_episode_id_episodes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_episode_id"), ["episode_id"], unique=False)
        batch_op.create_index("ix_events_occurred_at_id", ["occurred_at", "id"], unique=False)
        batch_op.create_index("ix_events_received_at", ["received_at"], unique=False)
        batch_op.create_index(
            "ix_events_source_id_occurred_at", ["source_id", "occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_source_id_occurred_at")
        batch_op.drop_index("ix_events_received_at")
        batch_op.drop_index("ix_events_occurred_at_id")
        batch_op.drop_index(batch_op.f("ix_events_episode_id"))

    op.drop_table("events")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_status_next_attempt_at")
        batch_op.drop_index("ix_alerts_source_id_created_at")

    op.drop_table("alerts")
    op.drop_table("sources")
    op.drop_table("kakao_credentials")
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.drop_index("ix_episodes_source_id_status")

    op.drop_table("episodes")
