"""Password hashing (Argon2), user JWTs (HS256) and the service token check."""

from __future__ import annotations

import asyncio
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.settings import SecuritySettings

JWT_ALGORITHM = "HS256"
# Used only in development when JWT_SECRET is unset; production refuses to start without one.
DEV_JWT_SECRET = "sentinel-development-only-jwt-secret-do-not-use"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (from a JWT) or the service token (machine clients)."""

    kind: str  # "user" | "service"
    user_id: uuid.UUID | None = None
    role: str = "user"

    @property
    def rate_key(self) -> str:
        return f"user:{self.user_id}" if self.kind == "user" else "service"


class PasswordService:
    """Argon2id hashing, run in a worker thread so the event loop never waits on it."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        def _verify() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(_verify)


class TokenService:
    """Issues and checks user JWTs and the static service token."""

    def __init__(self, settings: SecuritySettings) -> None:
        self._settings = settings
        self._secret = settings.jwt_secret or DEV_JWT_SECRET
        self.expire_minutes = settings.jwt_expire_minutes

    def issue(self, user_id: uuid.UUID, role: str) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "role": role,
            "iat": now,
            "exp": now + timedelta(minutes=self.expire_minutes),
            "typ": "access",
        }
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    def decode_user(self, token: str) -> Principal | None:
        """A principal for a valid, unexpired HS256 token signed with our secret; else None."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                options={"require": ["exp", "sub", "iat"]},
            )
            return Principal(
                kind="user", user_id=uuid.UUID(claims["sub"]), role=claims.get("role", "user")
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None

    def is_service_token(self, token: str) -> bool:
        expected = self._settings.access_token
        return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())

    def authenticate(self, token: str) -> Principal | None:
        if self.is_service_token(token):
            return Principal(kind="service", role="service")
        return self.decode_user(token)
