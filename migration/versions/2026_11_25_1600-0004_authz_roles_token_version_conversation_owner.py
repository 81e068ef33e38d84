"""roles, token versions and conversation owners

Revision ID: 0004_authz
Revises: 0003_knowledge
Create Date: 2026-11-25 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_authz"
down_revision: str | None = "0003_knowledge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("token_version", sa.Integer(), server_default="0", nullable=False)
        )
    # Accounts from before roles were plain users: they become viewers.
    op.execute("UPDATE users SET role = 'viewer' WHERE role = 'user'")
    with op.batch_alter_table("rag_conversations") as batch:
        batch.add_column(sa.Column("owner_id", sa.Uuid(), nullable=True))
        batch.create_index(batch.f("ix_rag_conversations_owner_id"), ["owner_id"])
        batch.create_foreign_key(
            batch.f("fk_rag_conversations_owner_id_users"),
            "users",
            ["owner_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("rag_conversations") as batch:
        batch.drop_constraint(batch.f("fk_rag_conversations_owner_id_users"), type_="foreignkey")
        batch.drop_index(batch.f("ix_rag_conversations_owner_id"))
        batch.drop_column("owner_id")
    op.execute("UPDATE users SET role = 'user' WHERE role = 'viewer'")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
