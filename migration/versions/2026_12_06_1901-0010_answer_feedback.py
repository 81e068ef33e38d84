"""answer feedback: 👍/👎 per answer turn, a comment, the document that should have answered

Revision ID: 0010_answer_feedback
Revises: 0009_chunk_pages
Create Date: 2026-12-06 19:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0010_answer_feedback"
down_revision: str | None = "0009_chunk_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rag_answer_feedback",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("turn_id", sa.Uuid(), nullable=False),
        sa.Column(
            "rating",
            sa.Enum("up", "down", name="answer_rating", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("doc_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["doc_id"],
            ["knowledge_documents.id"],
            name=op.f("fk_rag_answer_feedback_doc_id_knowledge_documents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["turn_id"],
            ["rag_conversation_turns.id"],
            name=op.f("fk_rag_answer_feedback_turn_id_rag_conversation_turns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rag_answer_feedback")),
        sa.UniqueConstraint("turn_id", name=op.f("uq_rag_answer_feedback_turn_id")),
    )
    # A new table needs no batch mode (no ALTER on SQLite): the same DDL on both dialects.
    op.create_index(
        op.f("ix_rag_answer_feedback_doc_id"), "rag_answer_feedback", ["doc_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_rag_answer_feedback_doc_id"), table_name="rag_answer_feedback")
    op.drop_table("rag_answer_feedback")
