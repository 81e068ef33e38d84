"""Accounts: registration, login, lookup and admin creation."""

from __future__ import annotations

import uuid

from app.core.database import Database
from app.core.errors import Conflict, Unauthorized
from app.core.security import PasswordService, TokenService
from app.models.user import User
from app.repositories.users import UserRepository
from app.schemas.users import check_password_strength


class UserService:
    """Business rules for users; owns its transactions."""

    def __init__(
        self, database: Database, passwords: PasswordService, tokens: TokenService
    ) -> None:
        self.db = database
        self.passwords = passwords
        self.tokens = tokens

    async def register(
        self, email: str, password: str, name: str | None = None, role: str = "user"
    ) -> User:
        check_password_strength(password)
        password_hash = await self.passwords.hash(password)
        async with self.db.sessions.begin() as session:
            users = UserRepository(session)
            if await users.get_by_email(email) is not None:
                raise Conflict(
                    f"An account with email {email.lower()} already exists", code="email_taken"
                )
            return await users.add(
                User(email=email.lower(), name=name, password_hash=password_hash, role=role)
            )

    async def login(self, email: str, password: str) -> tuple[str, int]:
        async with self.db.sessions() as session:
            user = await UserRepository(session).get_by_email(email)
        # Verify even for unknown emails would cost a hash; a constant message is what matters.
        if (
            user is None
            or not user.is_active
            or not await self.passwords.verify(user.password_hash, password)
        ):
            raise Unauthorized("Incorrect email or password", code="invalid_credentials")
        return self.tokens.issue(user.id, user.role), self.tokens.expire_minutes * 60

    async def get(self, user_id: uuid.UUID) -> User:
        async with self.db.sessions() as session:
            user = await UserRepository(session).get(user_id)
        if user is None or not user.is_active:
            raise Unauthorized("Invalid access token", code="invalid_token")
        return user

    async def create_admin(
        self, email: str, password: str, name: str | None = None, reset_password: bool = False
    ) -> tuple[User, bool]:
        """Create an admin, or (with `reset_password`) promote an existing account and set its
        password; returns (user, created). Never overwrites an account silently."""
        check_password_strength(password)
        password_hash = await self.passwords.hash(password)
        async with self.db.sessions.begin() as session:
            users = UserRepository(session)
            existing = await users.get_by_email(email)
            if existing is not None and not reset_password:
                raise ValueError(
                    f"an account with e-mail {email.lower()} already exists; pass "
                    "--reset-password to make it admin and set this password"
                )
            if existing is not None:
                existing.role = "admin"
                existing.password_hash = password_hash
                return existing, False
            user = await users.add(
                User(email=email.lower(), name=name, password_hash=password_hash, role="admin")
            )
            return user, True
