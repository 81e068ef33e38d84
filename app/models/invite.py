"""Invites (REGISTRATION=invite) with their recorded uses, and password reset tokens.

Only SHA-256 digests of invite codes and reset tokens are stored: a copy of the database does
not hand out accounts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow


class Invite(Base):
    """An admin's invite: `max_uses` sign-ups with `role` until `expires_at`.

    `uses` is raised only by a conditional UPDATE (`uses < max_uses`), so concurrent sign-ups
    cannot overspend it. The issuer must still be an active admin when it is used.
    """

    __tablename__ = "invites"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(320))
    max_uses: Mapped[int] = mapped_column(Integer, default=1)
    uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    issued_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    uses_log: Mapped[list[InviteUse]] = relationship(
        order_by="InviteUse.used_at", lazy="selectin", cascade="all, delete-orphan"
    )


class InviteUse(Base):
    """One account created with an invite: who, when, and how (password or google)."""

    __tablename__ = "invite_uses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    invite_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("invites.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(320))
    method: Mapped[str] = mapped_column(String(20))
    used_at: Mapped[datetime] = mapped_column(default=utcnow)


class PasswordResetToken(Base):
    """A single-use password reset token (its digest); `used_at` set once used or superseded."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class InviteStatus(StrEnum):
    """Whether an invite can still be used, and if not, why."""

    ACTIVE = "active"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"
    REVOKED = "revoked"
    # The issuer was deactivated or is no longer an admin.
    ISSUER_GONE = "issuer_gone"


class SignUpMethod(StrEnum):
    """How an invite was used."""

    PASSWORD = "password"
    GOOGLE = "google"
