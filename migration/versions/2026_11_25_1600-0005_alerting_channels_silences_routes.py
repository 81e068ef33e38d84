"""alerting: one delivery per (alert, channel), silences, routes, acknowledgement, offline sources

Revision ID: 0005_alerting
Revises: 0004_authz
Create Date: 2026-11-25 16:00:00

Existing alerts keep their history: each non-suppressed alert gets a `kakao` delivery row
carrying its status, attempts and lease, so pending alerts are still delivered exactly once
after the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0005_alerting"
down_revision: str | None = "0004_authz"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = app.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_heartbeat_at", UTC, nullable=True))

    op.create_table(
        "alert_deliveries",
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=True),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "channel", "stage", name=op.f("pk_alert_deliveries")),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alert_deliveries_channel_status_next_attempt_at",
            ["channel", "status", "next_attempt_at"],
            unique=False,
        )
    # Carry the single-channel outbox over: every alert that was meant for Kakao.
    op.execute(
        "INSERT INTO alert_deliveries (alert_id, channel, stage, status, attempts, "
        "next_attempt_at, claimed_until, last_error, sent_at, created_at, updated_at) "
        "SELECT id, 'kakao', 'notify', status, attempts, next_attempt_at, claimed_until, "
        "last_error, sent_at, created_at, updated_at FROM alerts WHERE status <> 'suppressed'"
    )

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind", sa.String(length=32), nullable=False, server_default="abnormal_episode"
            )
        )
        batch_op.add_column(sa.Column("occurred_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("acked_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("acked_by", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", UTC, nullable=True))
        batch_op.alter_column("episode_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.drop_index("ix_alerts_status_next_attempt_at")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("claimed_until")
        batch_op.create_index("ix_alerts_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_alerts_status_created_at", ["status", "created_at"], unique=False)
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column("kind", server_default=None)

    op.create_table(
        "alert_silences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_pattern", sa.String(length=128), nullable=False),
        sa.Column("starts_at", UTC, nullable=False),
        sa.Column("ends_at", UTC, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.create_index("ix_alert_silences_ends_at", ["ends_at"], unique=False)

    op.create_table(
        "alert_routes",
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source_pattern", sa.String(length=128), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_alert_routes")),
    )

    op.create_table(
        "source_outages",
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("offline_since", UTC, nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_source_outages_alert_id_alerts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_source_outages")),
    )


def downgrade() -> None:
    op.drop_table("source_outages")
    op.drop_table("alert_routes")
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_silences_ends_at")
    op.drop_table("alert_silences")
    # Alerts that are not about an episode cannot exist in the older schema.
    op.execute("DELETE FROM alerts WHERE episode_id IS NULL")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_status_created_at")
        batch_op.drop_index("ix_alerts_created_at")
        batch_op.add_column(sa.Column("claimed_until", UTC, nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", UTC, nullable=True))
        batch_op.create_index(
            "ix_alerts_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
        batch_op.alter_column("episode_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("acked_by")
        batch_op.drop_column("acked_at")
        batch_op.drop_column("occurred_at")
        batch_op.drop_column("kind")
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_deliveries_channel_status_next_attempt_at")
    op.drop_table("alert_deliveries")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("last_heartbeat_at")
