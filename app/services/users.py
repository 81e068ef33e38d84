"""Accounts: registration (REGISTRATION), login, Google sign-in, roles and token revocation."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from loguru import logger

from app.clients.google import GoogleTokenVerifier
from app.core.database import Database
from app.core.errors import Forbidden, NotFound, RateLimited, Unauthorized
from app.core.rate_limit import RateLimiter
from app.core.security import PasswordService, Role, TokenService, parse_role
from app.core.settings import Settings
from app.models.user import User
from app.repositories.users import UserRepository
from app.schemas.users import check_password_strength
from app.services.authn import AccountStateCache

INVITE_DAYS = 7


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A bearer token and its lifetime in seconds."""

    access_token: str
    expires_in: int


def _account_key(email: str) -> str:
    # Rate-limit keys name no e-mail address (they end up in Redis, maybe in dumps).
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class UserService:
    """Business rules for users; owns its transactions."""

    def __init__(
        self,
        database: Database,
        passwords: PasswordService,
        tokens: TokenService,
        accounts: AccountStateCache,
        limiter: RateLimiter,
        settings: Settings,
        google: GoogleTokenVerifier,
    ) -> None:
        self.db = database
        self.passwords = passwords
        self.tokens = tokens
        self.accounts = accounts
        self.limiter = limiter
        self.settings = settings
        self.google = google

    # -- sign-up ---------------------------------------------------------------------------

    def _signup_role(self, email: str, invite: str | None) -> Role:
        """The role a new account gets, or Forbidden when REGISTRATION does not allow it."""
        mode = self.settings.registration
        if mode == "open":
            return Role.VIEWER
        if mode == "invite":
            decoded = self.tokens.decode_invite(invite) if invite else None
            if decoded is None:
                raise Forbidden(
                    "Registration needs an invite on this server; ask an administrator for one",
                    code="registration_invite_only",
                )
            invited_email, role = decoded
            if invited_email is not None and invited_email != email.lower():
                raise Forbidden(
                    "This invite is for another e-mail address", code="registration_invite_only"
                )
            return role
        raise Forbidden(
            "Registration is closed on this server; ask an administrator for an account",
            code="registration_closed",
        )

    async def register(
        self, email: str, password: str, name: str | None = None, invite: str | None = None
    ) -> None:
        """Create a viewer account (or the invite's role).

        An address that already has an account gets the same answer and costs the same time
        (the password is hashed either way), so the route does not reveal who is registered.
        """
        role = self._signup_role(email, invite)
        check_password_strength(password)
        password_hash = await self.passwords.hash(password)
        async with self.db.sessions.begin() as session:
            users = UserRepository(session)
            if await users.get_by_email(email) is not None:
                logger.info("registration for an existing account ignored")
                return
            await users.add(
                User(email=email.lower(), name=name, password_hash=password_hash, role=role)
            )

    # -- sign-in ---------------------------------------------------------------------------

    async def login(self, email: str, password: str, client: str = "unknown") -> IssuedToken:
        """Check a password. Limits: LOGIN_MAX_PER_CLIENT attempts per client address and
        LOGIN_MAX_FAILURES_PER_ACCOUNT failures per account (when RATE_LIMIT_ENABLED)."""
        limited = self.limiter.enabled
        key = _account_key(email)
        if limited:
            decision = await self.limiter.hit("login_client", client)
            if not decision.allowed:
                raise RateLimited(
                    f"Too many sign-in attempts from this client ({decision.limit}); retry in "
                    f"{decision.retry_after_secs} s",
                    headers={"Retry-After": str(decision.retry_after_secs)},
                )
            wait = await self.limiter.blocked("login_account", key)
            if wait:
                raise RateLimited(
                    "Too many failed sign-ins for this account; retry in "
                    f"{wait} s or reset the password",
                    headers={"Retry-After": str(wait)},
                )
        async with self.db.sessions() as session:
            user = await UserRepository(session).get_by_email(email)
        if user is None:
            # Same Argon2 work as a known address: response time does not tell them apart.
            await self.passwords.verify_dummy(password)
            ok = False
        else:
            ok = await self.passwords.verify(user.password_hash, password) and user.is_active
        if not ok or user is None:
            if limited:
                await self.limiter.hit("login_account", key)
            raise Unauthorized("Incorrect email or password", code="invalid_credentials")
        return self._issue(user)

    def _issue(self, user: User) -> IssuedToken:
        token = self.tokens.issue(user.id, parse_role(user.role), user.token_version)
        return IssuedToken(token, self.tokens.expire_minutes * 60)

    async def google_sign_in(self, id_token: str, invite: str | None = None) -> IssuedToken:
        """Verify a Google ID token; link to the account with that verified e-mail or create
        one (subject to REGISTRATION)."""
        identity = await self.google.verify(id_token)
        async with self.db.sessions() as session:
            user = await UserRepository(session).get_by_email(identity.email)
        if user is None:
            role = self._signup_role(identity.email, invite)
            # No password sign-in until the person sets one: a random, unknown password.
            password_hash = await self.passwords.hash(uuid.uuid4().hex + uuid.uuid4().hex)
            async with self.db.sessions.begin() as session:
                users = UserRepository(session)
                user = await users.get_by_email(identity.email) or await users.add(
                    User(
                        email=identity.email,
                        name=identity.name,
                        password_hash=password_hash,
                        role=role,
                    )
                )
            logger.info("account {} created by Google sign-in", user.id)
        if not user.is_active:
            raise Unauthorized("This account is deactivated", code="invalid_credentials")
        return self._issue(user)

    # -- account -------------------------------------------------------------------------

    async def get(self, user_id: uuid.UUID) -> User:
        async with self.db.sessions() as session:
            user = await UserRepository(session).get(user_id)
        if user is None or not user.is_active:
            raise Unauthorized("Invalid access token", code="invalid_token")
        return user

    async def change_password(self, user_id: uuid.UUID, current: str, new: str) -> IssuedToken:
        """Set a new password; every token issued before stops working (a new one is returned)."""
        check_password_strength(new)
        user = await self.get(user_id)
        if not await self.passwords.verify(user.password_hash, current):
            raise Forbidden("The current password is wrong", code="invalid_credentials")
        password_hash = await self.passwords.hash(new)
        async with self.db.sessions.begin() as session:
            row = await UserRepository(session).get(user_id)
            assert row is not None
            row.password_hash = password_hash
            row.token_version += 1
            user = row
        await self.accounts.invalidate(user_id)
        return self._issue(user)

    async def sign_out_everywhere(self, user_id: uuid.UUID) -> None:
        """Revoke every token of this account (they carry the old token version)."""
        async with self.db.sessions.begin() as session:
            row = await UserRepository(session).get(user_id)
            if row is None:
                raise NotFound("No such account", code="user_not_found")
            row.token_version += 1
        await self.accounts.invalidate(user_id)

    # -- administration --------------------------------------------------------------------

    async def list(self, limit: int = 200) -> list[User]:
        async with self.db.sessions() as session:
            return await UserRepository(session).list(limit)

    async def update(
        self,
        user_id: uuid.UUID,
        role: Role | None = None,
        is_active: bool | None = None,
        actor: uuid.UUID | None = None,
    ) -> User:
        """Change an account's role or active flag; takes effect within AUTH_STATE_CACHE_SECS."""
        async with self.db.sessions.begin() as session:
            user = await UserRepository(session).get(user_id)
            if user is None:
                raise NotFound(f"No user with id {user_id}", code="user_not_found")
            if role is not None:
                user.role = role.value
            if is_active is not None and is_active != user.is_active:
                user.is_active = is_active
                user.token_version += 1  # a reactivated account signs in afresh
        await self.accounts.invalidate(user_id)
        logger.info("account {} updated by {}: role={} active={}", user_id, actor, role, is_active)
        return user

    async def set_role(self, email: str, role: Role) -> User:
        """`sentinel set-role EMAIL ROLE`."""
        async with self.db.sessions() as session:
            user = await UserRepository(session).get_by_email(email)
        if user is None:
            raise NotFound(f"No account with e-mail {email.lower()}", code="user_not_found")
        return await self.update(user.id, role=role)

    def invite(self, email: str | None, role: Role) -> tuple[str, int]:
        """An invite code for REGISTRATION=invite and its lifetime in seconds."""
        return self.tokens.issue_invite(email, role, INVITE_DAYS), INVITE_DAYS * 86400

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
                existing.role = Role.ADMIN.value
                existing.password_hash = password_hash
                existing.token_version += 1
                result = existing, False
            else:
                user = await users.add(
                    User(
                        email=email.lower(),
                        name=name,
                        password_hash=password_hash,
                        role=Role.ADMIN.value,
                    )
                )
                result = user, True
        await self.accounts.invalidate(result[0].id)
        return result
