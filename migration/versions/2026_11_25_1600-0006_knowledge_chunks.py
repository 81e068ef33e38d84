"""knowledge chunks, index change log and index state

Revision ID: 0006_knowledge_chunks
Revises: 0005_alerting
Create Date: 2026-11-25 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0006_knowledge_chunks"
down_revision: str | None = "0005_alerting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledge_chunks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("doc_id", sa.Uuid(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(length=500), nullable=False),
        sa.Column("start_offset", sa.Integer(), nullable=False),
        sa.Column("end_offset", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["doc_id"],
            ["knowledge_documents.id"],
            name=op.f("fk_knowledge_chunks_doc_id_knowledge_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_chunks")),
    )
    op.create_index(
        op.f("ix_knowledge_chunks_doc_id"), "knowledge_chunks", ["doc_id"], unique=False
    )
    op.create_table(
        "knowledge_index_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("doc_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_knowledge_index_changes")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "knowledge_index_state",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_knowledge_index_state")),
    )


def downgrade() -> None:
    op.drop_table("knowledge_index_state")
    op.drop_table("knowledge_index_changes")
    op.drop_index(op.f("ix_knowledge_chunks_doc_id"), table_name="knowledge_chunks")
    op.drop_table("knowledge_chunks")
