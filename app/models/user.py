"""User accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin


class User(TimestampMixin, Base):
    """A person who logs in; `role` is viewer, operator or admin (`app.core.security.Role`).

    `token_version` is bumped by a password change, "sign out everywhere", deactivation and
    role changes: tokens carry the version they were issued with and older ones are refused.
    """

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="viewer")
    is_active: Mapped[bool] = mapped_column(default=True)
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Google's stable account id (`sub`): Google sign-in finds the account by it, never by
    # e-mail alone. `google_link_allowed` is an admin's one-time permission to link by e-mail.
    google_sub: Mapped[str | None] = mapped_column(String(255), unique=True)
    google_link_allowed: Mapped[bool] = mapped_column(default=False, server_default=false())
