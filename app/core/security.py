"""Password hashing (Argon2), user JWTs (HS256) and the service token check."""

from __future__ import annotations

import asyncio
import fnmatch
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.settings import SecuritySettings

JWT_ALGORITHM = "HS256"
# Used only in development when JWT_SECRET is unset; production refuses to start without one.
DEV_JWT_SECRET = "sentinel-development-only-jwt-secret-do-not-use"


class Role(StrEnum):
    """What a caller may do. User roles are ordered viewer < operator < admin; `service` is the
    machine principal (`ACCESS_TOKEN`, the video agent) and is not part of that order."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    SERVICE = "service"


USER_ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


def parse_role(value: str) -> Role:
    """A stored or claimed role; the pre-roles value `user` reads as viewer."""
    if value == "user":
        return Role.VIEWER
    return Role(value)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (from a JWT) or the service token (machine clients).

    A per-agent token is a service principal with `agent_id` set and `source_patterns`
    naming the sources it may speak for; the shared `ACCESS_TOKEN` has neither (any source).
    """

    kind: str  # "user" | "service"
    user_id: uuid.UUID | None = None
    role: Role = Role.VIEWER
    token_version: int = 0
    agent_id: uuid.UUID | None = None
    source_patterns: tuple[str, ...] | None = None  # None: any source

    @property
    def is_user(self) -> bool:
        return self.kind == "user" and self.user_id is not None

    def has(self, role: Role) -> bool:
        """True if this principal holds `role` (a user role: that rank or higher)."""
        if role is Role.SERVICE:
            return self.kind == "service"
        return self.is_user and _RANK.get(self.role, 0) >= _RANK[role]

    @property
    def rate_key(self) -> str:
        if self.kind == "user":
            return f"user:{self.user_id}"
        # Each agent credential has its own budgets; the shared token keeps the old key.
        return f"agent:{self.agent_id}" if self.agent_id is not None else "service"

    def may_speak_for(self, source_id: str) -> bool:
        """Whether this caller may post for `source_id` (users and the shared token: any)."""
        if self.source_patterns is None:
            return True
        return any(fnmatch.fnmatchcase(source_id, p) for p in self.source_patterns)


class PasswordService:
    """Argon2id hashing, run in a worker thread so the event loop never waits on it."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        # Verified against for unknown e-mails, so they cost the same time as known ones.
        self._dummy_hash = self._hasher.hash("sentinel-dummy-password-0")

    async def verify_dummy(self, password: str) -> None:
        await self.verify(self._dummy_hash, password)

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

    def issue(self, user_id: uuid.UUID, role: str, token_version: int = 0) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "role": str(role),
            "ver": token_version,
            "iat": now,
            "exp": now + timedelta(minutes=self.expire_minutes),
            "iss": self._settings.jwt_issuer,
            "aud": self._settings.jwt_audience,
            "typ": "access",
        }
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    def decode_user(self, token: str) -> Principal | None:
        """A principal for a valid, unexpired HS256 access token of ours; else None.

        Signature, `exp`, `iss` and `aud` only: whether the account is still active and the
        token's version current is checked by `Authenticator` (it needs the account state).
        """
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                options={"require": ["exp", "sub", "iat", "iss", "aud"]},
            )
            if claims.get("typ") != "access":
                return None
            version = claims.get("ver", 0)
            if not isinstance(version, int) or isinstance(version, bool):
                return None
            return Principal(
                kind="user",
                user_id=uuid.UUID(claims["sub"]),
                role=parse_role(claims.get("role", "viewer")),
                token_version=version,
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None

    def is_service_token(self, token: str) -> bool:
        expected = self._settings.access_token
        return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())

    def authenticate(self, token: str) -> Principal | None:
        if self.is_service_token(token):
            return Principal(kind="service", role=Role.SERVICE)
        return self.decode_user(token)
