"""Accounts: registration (REGISTRATION) with stored invites, login with per-client lockout and
a global slow-down, password reset by e-mail, Google sign-in bound to Google's `sub`, roles
and token revocation."""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loguru import logger
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.google import GoogleIdentity, GoogleTokenVerifier
from app.clients.mailer import AccountMailer
from app.core.database import Database
from app.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from app.core.rate_limit import ACCOUNT_FAILURES, RateLimiter
from app.core.security import PasswordService, Role, TokenService, parse_role
from app.core.settings import Settings
from app.models.invite import (
    Invite,
    InviteStatus,
    InviteUse,
    PasswordResetToken,
    SignUpMethod,
)
from app.models.user import User
from app.repositories.users import InviteRepository, PasswordResetRepository, UserRepository
from app.schemas.users import GoogleProfile, InviteOut, InviteUseOut, check_password_strength
from app.services.authn import AccountStateCache

RESET_TOKEN_MINUTES = 30
# Slow-down per account: the first delay after LOGIN_SLOWDOWN_AFTER_FAILURES, doubled per
# further failure, capped at LOGIN_SLOWDOWN_MAX_SECS.
SLOWDOWN_BASE_SECS = 0.25
RESET_SUBJECT = "Sentinel 비밀번호 재설정 / Password reset"
RESET_TEXT = """Sentinel 계정의 비밀번호 재설정 요청을 받았습니다. 아래 링크(또는 토큰)는 30분 동안
한 번만 쓸 수 있습니다. 요청하지 않았다면 이 메일을 무시하세요.

Someone asked to reset the password of your Sentinel account. The link (or token) below works
once, for 30 minutes. If it was not you, ignore this mail.

{link}

(API: POST /api/v1/auth/password-reset/confirm {{"token": "...", "password": "..."}})
"""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A bearer token and its lifetime in seconds."""

    access_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """A new invite with its code (the only time the code is known)."""

    id: uuid.UUID
    code: str
    role: Role
    email: str | None
    max_uses: int
    expires_at: datetime


def _digest(secret: str) -> str:
    # Invite codes and reset tokens are random 256-bit strings: a plain SHA-256 suffices.
    return hashlib.sha256(secret.encode()).hexdigest()


def _account_key(email: str) -> str:
    # Rate-limit keys name no e-mail address (they end up in Redis, maybe in dumps).
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _account_client_key(account: str, client: str) -> str:
    # Account first, so `sentinel unlock` clears every client of an account by prefix.
    return f"{account}:{hashlib.sha256(client.encode()).hexdigest()[:16]}"


def invite_status(invite: Invite, issuer: User | None, now: datetime) -> InviteStatus:
    """Whether `invite` can be used now; the issuer must still be an active admin."""
    if invite.revoked_at is not None:
        return InviteStatus.REVOKED
    if issuer is None or not issuer.is_active or parse_role(issuer.role) is not Role.ADMIN:
        return InviteStatus.ISSUER_GONE
    if invite.expires_at <= now:
        return InviteStatus.EXPIRED
    if invite.uses >= invite.max_uses:
        return InviteStatus.EXHAUSTED
    return InviteStatus.ACTIVE


INVITE_REFUSED = "Registration needs an invite on this server; ask an administrator for one"


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
        mailer: AccountMailer,
    ) -> None:
        self.db = database
        self.passwords = passwords
        self.tokens = tokens
        self.accounts = accounts
        self.limiter = limiter
        self.settings = settings
        self.google = google
        self.mailer = mailer
        # Reset mail goes out after the answer (a known address must not answer slower than
        # an unknown one); one at a time, so the newest request's link is the one that works.
        self._mailing: set[asyncio.Task[None]] = set()
        self._reset_lock = asyncio.Lock()

    # -- sign-up ---------------------------------------------------------------------------

    async def _signup_role(
        self, session: AsyncSession, email: str, code: str | None
    ) -> tuple[Role, Invite | None]:
        """The role a new account gets and the invite it spends, or Forbidden when
        REGISTRATION does not allow it. Every unusable invite gets the same answer."""
        mode = self.settings.registration
        if mode == "open":
            return Role.VIEWER, None
        if mode != "invite":
            raise Forbidden(
                "Registration is closed on this server; ask an administrator for an account",
                code="registration_closed",
            )
        invite = await InviteRepository(session).get_by_hash(_digest(code)) if code else None
        if invite is None:
            raise Forbidden(INVITE_REFUSED, code="registration_invite_only")
        issuer = await UserRepository(session).get(invite.issued_by) if invite.issued_by else None
        if invite_status(invite, issuer, datetime.now(UTC)) is not InviteStatus.ACTIVE:
            raise Forbidden(INVITE_REFUSED, code="registration_invite_only")
        if invite.email is not None and invite.email != email.lower():
            raise Forbidden(
                "This invite is for another e-mail address", code="registration_invite_only"
            )
        return parse_role(invite.role), invite

    @staticmethod
    async def _spend_invite(
        session: AsyncSession, invite: Invite, user: User, method: SignUpMethod
    ) -> None:
        """One use of `invite`, atomically (a lost race gets the bad-invite answer)."""
        invites = InviteRepository(session)
        if not await invites.take_use(invite.id, datetime.now(UTC)):
            raise Forbidden(INVITE_REFUSED, code="registration_invite_only")
        await invites.record_use(
            InviteUse(invite_id=invite.id, user_id=user.id, email=user.email, method=method.value)
        )
        logger.info("invite {} used by account {} ({})", invite.id, user.id, method.value)

    async def register(
        self, email: str, password: str, name: str | None = None, invite: str | None = None
    ) -> None:
        """Create a viewer account (or the invite's role).

        An address that already has an account gets the same answer and costs the same time
        (the password is hashed either way), so the route does not reveal who is registered.
        """
        async with self.db.sessions() as session:
            await self._signup_role(session, email, invite)  # refuse before hashing
        check_password_strength(password)
        password_hash = await self.passwords.hash(password)
        async with self.db.sessions.begin() as session:
            users = UserRepository(session)
            role, used = await self._signup_role(session, email, invite)
            if await users.get_by_email(email) is not None:
                logger.info("registration for an existing account ignored")
                return
            user = await users.add(
                User(email=email.lower(), name=name, password_hash=password_hash, role=role)
            )
            if used is not None:
                await self._spend_invite(session, used, user, SignUpMethod.PASSWORD)

    # -- sign-in ---------------------------------------------------------------------------

    async def _before_password_check(self, account: str, client: str) -> None:
        """429 when this client has failed too often for this account; then the account's
        slow-down (failures from every client delay the answer, never refuse it)."""
        if not self.limiter.enabled:
            return
        wait = await self.limiter.blocked("login_account", _account_client_key(account, client))
        if wait:
            raise RateLimited(
                "Too many failed sign-ins for this account; retry in "
                f"{wait} s or reset the password",
                headers={"Retry-After": str(wait)},
            )
        failures = await self.limiter.count(ACCOUNT_FAILURES, account)
        after = self.settings.security.login_slowdown_after_failures
        if failures > after:
            cap = self.settings.security.login_slowdown_max_secs
            await asyncio.sleep(min(cap, SLOWDOWN_BASE_SECS * 2 ** min(failures - after - 1, 16)))

    async def _password_failed(self, account: str, client: str) -> None:
        if self.limiter.enabled:
            await self.limiter.hit("login_account", _account_client_key(account, client))
            await self.limiter.hit(ACCOUNT_FAILURES, account)

    async def login(self, email: str, password: str, client: str = "unknown") -> IssuedToken:
        """Check a password. Limits (when RATE_LIMIT_ENABLED): LOGIN_MAX_PER_CLIENT attempts
        per client address; LOGIN_MAX_FAILURES_PER_ACCOUNT failures per account from one
        client; failures from all clients slow the account's sign-ins down."""
        key = _account_key(email)
        if self.limiter.enabled:
            decision = await self.limiter.hit("login_client", client)
            if not decision.allowed:
                raise RateLimited(
                    f"Too many sign-in attempts from this client ({decision.limit}); retry in "
                    f"{decision.retry_after_secs} s",
                    headers={"Retry-After": str(decision.retry_after_secs)},
                )
        await self._before_password_check(key, client)
        async with self.db.sessions() as session:
            user = await UserRepository(session).get_by_email(email)
        if user is None:
            # Same Argon2 work as a known address: response time does not tell them apart.
            await self.passwords.verify_dummy(password)
            ok = False
        else:
            ok = await self.passwords.verify(user.password_hash, password) and user.is_active
        if not ok or user is None:
            await self._password_failed(key, client)
            raise Unauthorized("Incorrect email or password", code="invalid_credentials")
        return self._issue(user)

    async def unlock(self, email: str) -> None:
        """`sentinel unlock EMAIL`: forget the account's failed sign-ins (every client)."""
        key = _account_key(email)
        await self.limiter.clear("login_account", key + ":")
        await self.limiter.clear(ACCOUNT_FAILURES, key)
        logger.info("sign-in counters cleared for account key {}", key[:8])

    def _issue(self, user: User) -> IssuedToken:
        token = self.tokens.issue(user.id, parse_role(user.role), user.token_version)
        return IssuedToken(token, self.tokens.expire_minutes * 60)

    # -- Google ----------------------------------------------------------------------------

    async def google_sign_in(
        self,
        id_token: str,
        invite: str | None = None,
        password: str | None = None,
        client: str = "unknown",
    ) -> IssuedToken:
        """Verify a Google ID token; sign in the account bound to its `sub`, link an existing
        account with that e-mail (an admin allowed it, or `password` proves ownership), or
        create one (subject to REGISTRATION)."""
        identity = await self.google.verify(id_token)
        async with self.db.sessions() as session:
            users = UserRepository(session)
            user = await users.get_by_google_sub(identity.subject)
            if user is None:
                user = await users.get_by_email(identity.email)
        if user is None:
            user = await self._google_sign_up(identity, invite)
        if not user.is_active:
            raise Unauthorized("This account is deactivated", code="invalid_credentials")
        if user.google_sub is None:
            user = await self._link_google(user, identity.subject, password, client)
        elif user.google_sub != identity.subject:
            raise Conflict(
                "This account is linked to another Google account; sign in with that one or "
                "with the password",
                code="google_account_mismatch",
            )
        return self._issue(user)

    @staticmethod
    def _google_profile(identity: GoogleIdentity) -> GoogleProfile:
        """Google's e-mail and name, checked as registration checks them."""
        try:
            return GoogleProfile(email=identity.email, name=identity.name)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "profile"
            msg = str(error["msg"]).removeprefix("Value error, ")
            raise ValidationFailed(
                f"The Google account's {where} cannot be used here: {msg}"
            ) from exc

    async def _google_sign_up(self, identity: GoogleIdentity, code: str | None) -> User:
        profile = self._google_profile(identity)
        # No password sign-in until the person sets one: a random, unknown password.
        password_hash = await self.passwords.hash(secrets.token_hex(32))
        async with self.db.sessions.begin() as session:
            users = UserRepository(session)
            role, used = await self._signup_role(session, profile.email, code)
            user = await users.add(
                User(
                    email=str(profile.email).lower(),
                    name=profile.name,
                    password_hash=password_hash,
                    role=role,
                    google_sub=identity.subject,
                )
            )
            if used is not None:
                await self._spend_invite(session, used, user, SignUpMethod.GOOGLE)
        logger.info("account {} created by Google sign-in", user.id)
        return user

    async def _link_google(
        self, user: User, subject: str, password: str | None, client: str
    ) -> User:
        """Bind `subject` to an account that has none: only with an admin's permission or
        the account's current password (checked like a sign-in)."""
        if not user.google_link_allowed:
            if password is None:
                raise Conflict(
                    "An account with this e-mail already exists and is not linked to Google; "
                    "send its current password as `password` with the Google token, or ask an "
                    "administrator to allow linking",
                    code="google_link_refused",
                )
            await self._check_current_password(user, password, client)
        async with self.db.sessions.begin() as session:
            row = await UserRepository(session).get(user.id)
            if row is None:
                raise Unauthorized("This account is deactivated", code="invalid_credentials")
            if row.google_sub is not None and row.google_sub != subject:
                raise Conflict(
                    "This account is linked to another Google account; sign in with that one "
                    "or with the password",
                    code="google_account_mismatch",
                )
            row.google_sub = subject
            row.google_link_allowed = False
        logger.info("account {} linked to a Google account", user.id)
        return row

    # -- account -------------------------------------------------------------------------

    async def get(self, user_id: uuid.UUID) -> User:
        async with self.db.sessions() as session:
            user = await UserRepository(session).get(user_id)
        if user is None or not user.is_active:
            raise Unauthorized("Invalid access token", code="invalid_token")
        return user

    async def _check_current_password(self, user: User, password: str, client: str) -> None:
        """A password check outside login counts like a failed sign-in (same limits)."""
        key = _account_key(user.email)
        await self._before_password_check(key, client)
        if not await self.passwords.verify(user.password_hash, password):
            await self._password_failed(key, client)
            raise Forbidden("The current password is wrong", code="invalid_credentials")

    async def change_password(
        self, user_id: uuid.UUID, current: str, new: str, client: str = "unknown"
    ) -> IssuedToken:
        """Set a new password; every token issued before stops working (a new one is returned)."""
        check_password_strength(new)
        user = await self.get(user_id)
        await self._check_current_password(user, current, client)
        password_hash = await self.passwords.hash(new)
        return await self._set_password(user_id, password_hash)

    async def _set_password(self, user_id: uuid.UUID, password_hash: str) -> IssuedToken:
        async with self.db.sessions.begin() as session:
            row = await UserRepository(session).get(user_id)
            if row is None:
                raise NotFound("No such account", code="user_not_found")
            row.password_hash = password_hash
            row.token_version += 1
            await PasswordResetRepository(session).retire_all(user_id, datetime.now(UTC))
            user = row
        await self.accounts.invalidate(user_id)
        return self._issue(user)

    # -- password reset --------------------------------------------------------------------

    async def request_password_reset(self, email: str, client: str = "unknown") -> None:
        """Mail a single-use, 30-minute reset token to the account, if there is one and
        e-mail is set up. The caller answers the same in every case."""
        if self.limiter.enabled:
            decision = await self.limiter.hit("password_reset_client", client)
            if not decision.allowed:
                raise RateLimited(
                    "Too many password reset requests from this client; retry in "
                    f"{decision.retry_after_secs} s",
                    headers={"Retry-After": str(decision.retry_after_secs)},
                )
        if not self.mailer.configured:
            logger.warning(
                "password reset requested, but no mail can be sent: set SMTP_HOST and "
                "ALERT_EMAIL_FROM"
            )
            return
        task = asyncio.create_task(self._mail_reset(email), name="password-reset-mail")
        self._mailing.add(task)
        task.add_done_callback(self._mailing.discard)

    async def reset_mail_sent(self) -> None:
        """Wait for the reset mail already requested (tests, shutdown)."""
        while self._mailing:
            await asyncio.gather(*self._mailing, return_exceptions=True)

    async def _mail_reset(self, email: str) -> None:
        try:
            async with self._reset_lock:
                await self._issue_reset(email)
        except Exception as exc:  # a background task: nobody else would see it
            logger.warning("password reset mail failed: {}", type(exc).__name__)

    async def _issue_reset(self, email: str) -> None:
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        async with self.db.sessions.begin() as session:
            user = await UserRepository(session).get_by_email(email)
            if user is None or not user.is_active:
                logger.info("password reset for an unknown or inactive address ignored")
                return
            if self.limiter.enabled:
                sent = await self.limiter.hit("password_reset_account", _account_key(email))
                if not sent.allowed:
                    logger.info("password reset mail for account {} held back (limit)", user.id)
                    return
            resets = PasswordResetRepository(session)
            await resets.retire_all(user.id, now)  # only the newest link works
            await resets.add(
                PasswordResetToken(
                    user_id=user.id,
                    token_hash=_digest(token),
                    expires_at=now + timedelta(minutes=RESET_TOKEN_MINUTES),
                )
            )
            address, user_id = user.email, user.id
        link = self.settings.security.password_reset_url + token
        if await self.mailer.send(address, RESET_SUBJECT, RESET_TEXT.format(link=link)):
            logger.info("password reset mail sent for account {}", user_id)

    async def confirm_password_reset(self, token: str, password: str) -> None:
        """Set the password with a reset token: once, within 30 minutes; every earlier access
        token and every other reset token of the account stops working."""
        refused = Forbidden(
            "This password reset token is invalid, used or expired; ask for a new one",
            code="invalid_reset_token",
        )
        now = datetime.now(UTC)
        async with self.db.sessions() as session:
            row = await PasswordResetRepository(session).get_by_hash(_digest(token))
        if row is None or row.used_at is not None or row.expires_at <= now:
            raise refused
        check_password_strength(password)
        password_hash = await self.passwords.hash(password)
        async with self.db.sessions.begin() as session:
            if not await PasswordResetRepository(session).use(row.id, now):
                raise refused
            user = await UserRepository(session).get(row.user_id)
            if user is None or not user.is_active:
                raise refused
            email = user.email
        await self._set_password(row.user_id, password_hash)
        await self.unlock(email)
        logger.info("password of account {} set by a reset token", row.user_id)

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
        allow_google_link: bool | None = None,
    ) -> User:
        """Change an account's role, active flag or Google-link permission; takes effect
        within AUTH_STATE_CACHE_SECS."""
        async with self.db.sessions.begin() as session:
            user = await UserRepository(session).get(user_id)
            if user is None:
                raise NotFound(f"No user with id {user_id}", code="user_not_found")
            if role is not None:
                user.role = role.value
            if is_active is not None and is_active != user.is_active:
                user.is_active = is_active
                user.token_version += 1  # a reactivated account signs in afresh
            if allow_google_link is not None:
                user.google_link_allowed = allow_google_link
        await self.accounts.invalidate(user_id)
        logger.info(
            "account {} updated by {}: role={} active={} google_link={}",
            user_id,
            actor or "the command line",
            role,
            is_active,
            allow_google_link,
        )
        return user

    async def set_role(self, email: str, role: Role) -> User:
        """`sentinel set-role EMAIL ROLE`."""
        async with self.db.sessions() as session:
            user = await UserRepository(session).get_by_email(email)
        if user is None:
            raise NotFound(f"No account with e-mail {email.lower()}", code="user_not_found")
        return await self.update(user.id, role=role)

    # -- invites ---------------------------------------------------------------------------

    async def create_invite(
        self,
        issuer: uuid.UUID | None,
        role: Role,
        email: str | None = None,
        max_uses: int = 1,
        expires_in_hours: int = 72,
    ) -> IssuedInvite:
        """A stored invite for REGISTRATION=invite; the code is returned once (only its hash
        is kept). It dies with the issuer's admin role."""
        if issuer is None:
            # Without a signed-in admin (development without tokens) the invite would be dead
            # at birth: say so instead of handing out a code that never works.
            raise Forbidden(
                "Invites are bound to the admin who issues them; sign in as an admin to create one",
                code="invite_needs_admin",
            )
        code = secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + timedelta(hours=expires_in_hours)
        async with self.db.sessions.begin() as session:
            invite = await InviteRepository(session).add(
                Invite(
                    code_hash=_digest(code),
                    role=role.value,
                    email=email.lower() if email else None,
                    max_uses=max_uses,
                    uses=0,
                    issued_by=issuer,
                    expires_at=expires_at,
                )
            )
        logger.info("invite {} ({}, {} uses) issued by {}", invite.id, role, max_uses, issuer)
        return IssuedInvite(invite.id, code, role, invite.email, max_uses, expires_at)

    async def list_invites(self, limit: int = 200) -> builtins.list[InviteOut]:
        """Invites, newest first, with their state and every recorded use."""
        now = datetime.now(UTC)
        async with self.db.sessions() as session:
            invites = await InviteRepository(session).list(limit)
            ids = {i.issued_by for i in invites if i.issued_by is not None}
            issuers: dict[uuid.UUID, User] = {}
            if ids:
                rows = await session.scalars(select(User).where(User.id.in_(ids)))
                issuers = {u.id: u for u in rows}
            return [
                InviteOut(
                    id=i.id,
                    role=parse_role(i.role),
                    email=i.email,
                    max_uses=i.max_uses,
                    uses=i.uses,
                    status=invite_status(i, issuers.get(i.issued_by) if i.issued_by else None, now),
                    issued_by=i.issued_by,
                    created_at=i.created_at,
                    expires_at=i.expires_at,
                    revoked_at=i.revoked_at,
                    used_by=[
                        InviteUseOut(
                            user_id=u.user_id,
                            email=u.email,
                            method=SignUpMethod(u.method),
                            used_at=u.used_at,
                        )
                        for u in i.uses_log
                    ],
                )
                for i in invites
            ]

    async def revoke_invite(self, invite_id: uuid.UUID, actor: uuid.UUID | None = None) -> None:
        """Revoke an invite: later sign-ups with it are refused."""
        async with self.db.sessions.begin() as session:
            invite = await InviteRepository(session).get(invite_id)
            if invite is None:
                raise NotFound(f"No invite with id {invite_id}", code="invite_not_found")
            if invite.revoked_at is None:
                invite.revoked_at = datetime.now(UTC)
        logger.info("invite {} revoked by {}", invite_id, actor)

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
