"""agents: per-agent credentials and registered sources

Revision ID: 0013_agents
Revises: 0012_accounts
Create Date: 2026-12-07 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0013_agents"
down_revision: str | None = "0012_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("source_patterns", sa.JSON(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.Column("rotated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("name", name=op.f("uq_agents_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agents_token_hash")),
    )
    op.create_table(
        "registered_sources",
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("watch_offline", sa.Boolean(), nullable=False),
        sa.Column("registered_by", sa.String(length=80), nullable=True),
        sa.Column("registered_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_registered_sources")),
    )


def downgrade() -> None:
    op.drop_table("registered_sources")
    op.drop_table("agents")
