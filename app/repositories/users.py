"""User, invite and password-reset queries; never commits (the service owns the transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.invite import Invite, InviteUse, PasswordResetToken
from app.models.user import User


class UserRepository:
    """SQL for the `users` table."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email.lower()))
        return result.scalar_one_or_none()

    async def get_by_google_sub(self, subject: str) -> User | None:
        result = await self.session.execute(select(User).where(User.google_sub == subject))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def list(self, limit: int) -> list[User]:
        rows = await self.session.scalars(select(User).order_by(User.created_at).limit(limit))
        return list(rows.all())


class InviteRepository:
    """SQL for `invites` and `invite_uses`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, invite: Invite) -> Invite:
        self.session.add(invite)
        await self.session.flush()
        return invite

    async def get(self, invite_id: uuid.UUID) -> Invite | None:
        return await self.session.get(Invite, invite_id)

    async def get_by_hash(self, code_hash: str) -> Invite | None:
        result = await self.session.execute(select(Invite).where(Invite.code_hash == code_hash))
        return result.scalar_one_or_none()

    async def list(self, limit: int) -> list[Invite]:
        rows = await self.session.scalars(
            select(Invite).order_by(Invite.created_at.desc()).limit(limit)
        )
        return list(rows.all())

    async def take_use(self, invite_id: uuid.UUID, now: datetime) -> bool:
        """Spend one use, atomically: the UPDATE matches only while a use is left (and the
        invite is neither revoked nor expired), so two concurrent sign-ups cannot both win."""
        result = await self.session.execute(
            update(Invite)
            .where(
                Invite.id == invite_id,
                Invite.uses < Invite.max_uses,
                Invite.revoked_at.is_(None),
                Invite.expires_at > now,
            )
            .values(uses=Invite.uses + 1)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    async def record_use(self, use: InviteUse) -> None:
        self.session.add(use)
        await self.session.flush()


class PasswordResetRepository:
    """SQL for `password_reset_tokens`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: PasswordResetToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def get_by_hash(self, token_hash: str) -> PasswordResetToken | None:
        result = await self.session.execute(
            select(PasswordResetToken).where(PasswordResetToken.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def use(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Mark the token used, once: a second (concurrent) use matches no row."""
        result = await self.session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.id == token_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    async def retire_all(self, user_id: uuid.UUID, now: datetime) -> None:
        """Make every unused token of the account unusable."""
        await self.session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
