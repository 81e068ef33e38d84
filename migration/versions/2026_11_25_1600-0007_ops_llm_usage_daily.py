"""ops: LLM usage per day and model

Revision ID: 0007_ops
Revises: 0006_knowledge_chunks
Create Date: 2026-11-25 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_ops"
down_revision: str | None = "0006_knowledge_chunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTERS = (
    "calls",
    "successes",
    "errors",
    "rate_limited",
    "quota_exhausted",
    "fallbacks",
    "served_as_fallback",
)
_CACHE = ("cache_exact_hits", "cache_semantic_hits", "cache_misses", "local_answers")


def upgrade() -> None:
    op.create_table(
        "llm_usage_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=120), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTERS),
        sa.Column("tokens_in", sa.BigInteger(), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _CACHE),
        sa.PrimaryKeyConstraint("day", "provider", "model", name=op.f("pk_llm_usage_daily")),
    )


def downgrade() -> None:
    op.drop_table("llm_usage_daily")
