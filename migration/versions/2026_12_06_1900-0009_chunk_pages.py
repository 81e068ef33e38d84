"""knowledge chunk pages

Revision ID: 0009_chunk_pages
Revises: 0008_jobs
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_chunk_pages"
down_revision: str | None = "0008_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The page a chunk starts on, for documents made from a paged file (PDF); NULL otherwise.
    with op.batch_alter_table("knowledge_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("page", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("knowledge_chunks", schema=None) as batch_op:
        batch_op.drop_column("page")
