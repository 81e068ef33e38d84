"""Kakao "send to me" memos as an alert channel: the encrypted token store, refresh under a
lock, and the `Notifier` that delivers an `AlertMessage` (200 characters, link button)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from loguru import logger
from sqlalchemy.exc import IntegrityError

from app.clients.kakao import KakaoClient, KakaoError
from app.clients.notifiers.base import AlertMessage, DeliveryResult
from app.core.crypto import SecretBox, SecretDecryptionError
from app.core.database import Database
from app.core.errors import Unavailable
from app.core.lock import LockService
from app.core.settings import AlertSettings
from app.models.alert import KakaoCredential
from app.models.base import utcnow
from app.repositories.alerts import CredentialRepository
from app.schemas.alerts import TokenCheckOut
from app.services.alert_text import KAKAO_TEXT_LIMIT

TEXT_LIMIT = KAKAO_TEXT_LIMIT


class KakaoNotConfigured(Unavailable):
    """No Kakao tokens are configured, so nothing can be delivered."""

    code = "kakao_not_configured"


ACK_BUTTON_TITLE = "확인(응답)"


def memo_template(text: str, settings: AlertSettings, ack_url: str | None = None) -> dict[str, Any]:
    """Kakao's "text" template object. With an acknowledgement link it has two buttons (the
    console link and the one-click acknowledgement; Kakao allows two, and `buttons` takes
    precedence over `button_title`)."""
    link = {"web_url": settings.link_url, "mobile_web_url": settings.link_url}
    template: dict[str, Any] = {
        "object_type": "text",
        "text": text[:TEXT_LIMIT],
        "link": link,
        "button_title": settings.button_title,
    }
    if ack_url:
        ack = {"web_url": ack_url, "mobile_web_url": ack_url}
        template["buttons"] = [
            {"title": settings.button_title, "link": link},
            {"title": ACK_BUTTON_TITLE, "link": ack},
        ]
    return template


@dataclass(frozen=True)
class KakaoCredentials:
    """Decrypted tokens, held only in memory for one delivery."""

    access_token: str | None
    refresh_token: str | None


def _fingerprint(access: str, refresh: str) -> str:
    return hashlib.sha256(f"{access}\0{refresh}".encode()).hexdigest()


class CredentialStore:
    """Kakao tokens in the database, encrypted; seeded from settings and updated on refresh."""

    def __init__(self, database: Database, secrets: SecretBox, settings: AlertSettings) -> None:
        self.db = database
        self.secrets = secrets
        self.settings = settings

    def _seed_values(self) -> tuple[str, str]:
        return self.settings.kakao_access_token.strip(), self.settings.kakao_refresh_token.strip()

    async def load(self) -> KakaoCredentials | None:
        access, refresh = self._seed_values()
        if not (access or refresh):
            return None  # no tokens in settings: alerts are off, whatever the database holds
        try:
            return await self._load(access, refresh)
        except IntegrityError:
            # Another process seeded the row at the same moment; read what it stored.
            return await self._load(access, refresh)

    async def _load(self, access: str, refresh: str) -> KakaoCredentials:
        fingerprint = _fingerprint(access, refresh)
        async with self.db.sessions.begin() as session:
            repo = CredentialRepository(session)
            row = await repo.get()
            if row is not None and row.seed_fingerprint == fingerprint:
                try:
                    return KakaoCredentials(
                        self.secrets.decrypt(row.access_token_enc)
                        if row.access_token_enc
                        else None,
                        self.secrets.decrypt(row.refresh_token_enc)
                        if row.refresh_token_enc
                        else None,
                    )
                except SecretDecryptionError:
                    logger.warning(
                        "stored Kakao tokens cannot be decrypted (DATA_ENCRYPTION_KEY changed?); "
                        "falling back to the tokens in settings"
                    )
            # First use, or the operator put new tokens in the environment: store them.
            if row is None:
                row = KakaoCredential(id="default")
                repo.add(row)
            row.access_token_enc = self.secrets.encrypt(access) if access else None
            row.refresh_token_enc = self.secrets.encrypt(refresh) if refresh else None
            row.seed_fingerprint = fingerprint
            row.access_expires_at = None
            return KakaoCredentials(access or None, refresh or None)

    async def save_refreshed(
        self, access: str, refresh: str | None, expires_in: int | None
    ) -> None:
        async with self.db.sessions.begin() as session:
            row = await CredentialRepository(session).get_for_update()
            if row is None:
                return
            row.access_token_enc = self.secrets.encrypt(access)
            if refresh:  # Kakao sends a new refresh token only when the old one nears expiry
                row.refresh_token_enc = self.secrets.encrypt(refresh)
            row.access_expires_at = (
                utcnow() + timedelta(seconds=int(expires_in)) if expires_in else None
            )


class KakaoNotifier:
    """Sends memos with the stored tokens; refreshes the access token once on -401."""

    name = "kakao"

    def __init__(
        self,
        client: KakaoClient,
        store: CredentialStore,
        locks: LockService,
        settings: AlertSettings,
    ) -> None:
        self.client = client
        self.store = store
        self.locks = locks
        self.settings = settings

    async def credentials(self) -> KakaoCredentials:
        creds = await self.store.load()
        if creds is None or not (creds.access_token or creds.refresh_token):
            raise KakaoNotConfigured(
                "Kakao is not configured: set KAKAO_ACCESS_TOKEN (and KAKAO_REFRESH_TOKEN with "
                "KAKAO_REST_API_KEY for automatic refresh)"
            )
        return creds

    async def refreshed_token(self, stale: str | None) -> str:
        """A fresh access token; under a lock so concurrent refreshes collapse into one."""
        wait = self.settings.kakao_timeout_secs * 2 + 1
        async with self.locks.lock("kakao:refresh", ttl=wait + 5, wait=wait):
            creds = await self.credentials()
            if creds.access_token and creds.access_token != stale:
                return creds.access_token  # another process refreshed meanwhile
            if not creds.refresh_token or not self.settings.kakao_rest_api_key:
                raise KakaoError(
                    "Kakao access token expired and no refresh is possible: set "
                    "KAKAO_REFRESH_TOKEN and KAKAO_REST_API_KEY, or a new KAKAO_ACCESS_TOKEN",
                    token_expired=True,
                )
            tokens = await self.client.refresh(creds.refresh_token)
            await self.store.save_refreshed(
                tokens.access_token, tokens.refresh_token, tokens.expires_in
            )
            logger.info("Kakao access token refreshed")
            return tokens.access_token

    @property
    def configured(self) -> bool:
        return self.settings.kakao_configured

    async def send(self, message: AlertMessage) -> DeliveryResult:
        """Deliver through the outbox: Kakao's answer mapped to an outcome."""
        try:
            await self.send_text(message.short_text, message.ack_url)
        except KakaoNotConfigured as exc:
            return DeliveryResult.unconfigured(exc.message)
        except KakaoError as exc:
            if exc.retryable:
                return DeliveryResult.retry(exc.message)
            return DeliveryResult.failed(exc.message)
        return DeliveryResult.ok()

    async def send_text(self, text: str, ack_url: str | None = None) -> None:
        """Send one memo now; raises `KakaoNotConfigured` or `KakaoError` (debug route)."""
        creds = await self.credentials()
        template = memo_template(text, self.settings, ack_url)
        token = creds.access_token or await self.refreshed_token(None)
        try:
            await self.client.send_memo(token, template)
        except KakaoError as exc:
            if not exc.token_expired:
                raise
            token = await self.refreshed_token(token)
            await self.client.send_memo(token, template)  # a second -401 is final

    async def token_check(self) -> TokenCheckOut:
        try:
            creds = await self.credentials()
        except KakaoNotConfigured as exc:
            return TokenCheckOut(configured=False, valid=False, error=exc.message)
        refreshed = False
        try:
            token = creds.access_token or await self.refreshed_token(None)
            try:
                info = await self.client.access_token_info(token)
            except KakaoError as exc:
                if not exc.token_expired:
                    raise
                token = await self.refreshed_token(token)
                refreshed = True
                info = await self.client.access_token_info(token)
            me = await self.client.me(token)
        except KakaoError as exc:
            return TokenCheckOut(
                configured=True, valid=False, refreshed=refreshed, error=exc.message
            )
        return TokenCheckOut(
            configured=True,
            valid=True,
            expires_in=info.get("expires_in"),
            app_id=info.get("app_id"),
            user_id=me.get("id", info.get("id")),
            refreshed=refreshed,
        )
