"""Alerts: the outbox rows written on abnormal closes, Kakao delivery, and the dispatcher loop.

Exactly-once in practice: the alert row is committed with the episode close; dispatchers claim
rows with one conditional UPDATE (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so two processes never
send the same row; a claim carries a lease, so a row whose dispatcher died is retried after
`ALERT_CLAIM_LEASE_SECS`. The one unavoidable gap: a process killed after Kakao accepted a memo
but before the `sent` commit resends it once after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger
from sqlalchemy.exc import IntegrityError

from app.clients.kakao import KakaoClient, KakaoError
from app.core.crypto import SecretBox, SecretDecryptionError
from app.core.database import Database
from app.core.errors import Unavailable
from app.core.lock import LockService
from app.core.metrics import ALERT_DELIVERY_LATENCY, ALERTS, JOBS_FAILED_ALERTS
from app.core.settings import AlertSettings
from app.models.alert import Alert, KakaoCredential
from app.models.base import utcnow
from app.models.event import Episode
from app.repositories.alerts import AlertRepository, CredentialRepository
from app.services.event_knowledge import EventKnowledgeIndexer
from app.services.stream import EventStream

TEXT_LIMIT = 200


class KakaoNotConfigured(Unavailable):
    """No Kakao tokens are configured, so nothing can be delivered."""

    code = "kakao_not_configured"


def alert_text(episode: Episode) -> str:
    """The memo text (≤ 200 characters): source, label, score and time."""
    at = (episode.ended_at or episode.started_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    score = f"{episode.anomaly_score:.2f}" if episode.anomaly_score is not None else "n/a"
    text = (
        f"[Sentinel] Abnormal behaviour on {episode.source_id}: "
        f"{episode.top_label or 'unknown'} (score {score}) at {at}"
    )
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def memo_template(text: str, settings: AlertSettings) -> dict[str, Any]:
    """Kakao's "text" template object."""
    return {
        "object_type": "text",
        "text": text[:TEXT_LIMIT],
        "link": {"web_url": settings.link_url, "mobile_web_url": settings.link_url},
        "button_title": settings.button_title,
    }


class AlertService:
    """Writes outbox rows inside the caller's transaction and lists alerts."""

    def __init__(self, database: Database, settings: AlertSettings) -> None:
        self.db = database
        self.settings = settings

    async def record_for_episode(
        self, alerts: AlertRepository, episode: Episode, now: datetime
    ) -> Alert:
        """An abnormal close: a pending alert, or `suppressed` inside the source's cooldown."""
        status, error = "pending", None
        if self.settings.cooldown_secs > 0:
            since = now - timedelta(seconds=self.settings.cooldown_secs)
            recent = await alerts.last_unsuppressed_since(episode.source_id, since)
            if recent is not None:
                status = "suppressed"
                error = f"cooldown: alert {recent.id} for this source at {recent.created_at.isoformat()}"
        alert = Alert(
            id=uuid.uuid4(),
            episode_id=episode.id,
            source_id=episode.source_id,
            status=status,
            label=episode.top_label,
            score=episode.anomaly_score,
            text=alert_text(episode),
            attempts=0,
            next_attempt_at=now,
            last_error=error,
            created_at=now,
            updated_at=now,
        )
        alerts.add(alert)
        return alert

    async def job_failed(self, job_name: str, job_id: uuid.UUID, error: str) -> None:
        """A background job failed for good (every retry spent): raise an operator alert.

        Hook for the background-job runner. Alert rows are tied to episodes, so for now this
        alert is an ERROR log line plus `sentinel_job_failed_alerts_total{job}` (alert on the
        metric); the alert-channel rework can route it to the notifier registry here.
        """
        JOBS_FAILED_ALERTS.labels(job=job_name).inc()
        logger.bind(alert="job_failed", job=job_name, job_id=str(job_id)).error(
            "ALERT job {} ({}) failed for good: {}", job_name, job_id, error[:300]
        )

    async def page(
        self, *, limit: int, cursor: str | None, status: str | None, source_id: str | None
    ) -> tuple[list[Alert], str | None]:
        async with self.db.sessions() as session:
            return await AlertRepository(session).page(
                limit=limit, cursor=cursor, status=status, source_id=source_id
            )


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

    async def send(self, text: str) -> None:
        creds = await self.credentials()
        template = memo_template(text, self.settings)
        token = creds.access_token or await self.refreshed_token(None)
        try:
            await self.client.send_memo(token, template)
        except KakaoError as exc:
            if not exc.token_expired:
                raise
            token = await self.refreshed_token(token)
            await self.client.send_memo(token, template)  # a second -401 is final

    async def token_check(self) -> dict[str, Any]:
        try:
            creds = await self.credentials()
        except KakaoNotConfigured as exc:
            return {"configured": False, "valid": False, "error": exc.message}
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
            return {
                "configured": True,
                "valid": False,
                "refreshed": refreshed,
                "error": exc.message,
            }
        return {
            "configured": True,
            "valid": True,
            "expires_in": info.get("expires_in"),
            "app_id": info.get("app_id"),
            "user_id": me.get("id", info.get("id")),
            "refreshed": refreshed,
        }


class AlertDispatcher:
    """Background loop that delivers pending alerts; started and stopped with the app.

    On shutdown it finishes the memo in flight and records its outcome; alerts it had claimed
    but not started go back to `pending` for the next start (or another process).
    """

    BATCH = 10

    def __init__(
        self,
        database: Database,
        notifier: KakaoNotifier,
        stream: EventStream,
        settings: AlertSettings,
        event_index: EventKnowledgeIndexer | None = None,
    ) -> None:
        self.db = database
        self.notifier = notifier
        self.event_index = event_index
        self.stream = stream
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Deliver now instead of at the next tick (called after an alert is committed)."""
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._wake = asyncio.Event()
        if not self.settings.dispatcher_enabled:
            logger.info("alert dispatcher disabled (ALERT_DISPATCHER_ENABLED=false)")
            return
        self._task = asyncio.create_task(self._run(), name="alert-dispatcher")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                handled = await self.dispatch_once()
            except Exception as exc:  # the loop must survive a database or Kakao outage
                logger.warning("alert dispatch failed: {}: {}", type(exc).__name__, exc)
                handled = 0
            if handled >= self.BATCH or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.dispatch_interval_secs):
                    await self._wake.wait()
            self._wake.clear()

    async def dispatch_once(self) -> int:
        now = utcnow()
        async with self.db.sessions.begin() as session:
            claimed = await AlertRepository(session).claim_due(
                now, self.settings.claim_lease_secs, self.BATCH
            )
        for index, alert in enumerate(claimed):
            if self._stopping:
                await self._release([a.id for a in claimed[index:]])
                break
            await self._deliver(alert)
        return len(claimed)

    async def _release(self, ids: list[uuid.UUID]) -> None:
        async with self.db.sessions.begin() as session:
            repo = AlertRepository(session)
            for alert_id in ids:
                row = await repo.get(alert_id)
                if row is not None and row.status == "sending":
                    row.status, row.claimed_until = "pending", None
                    row.attempts = max(row.attempts - 1, 0)

    def _backoff(self, attempts: int) -> float:
        return min(
            self.settings.retry_max_secs, self.settings.retry_base_secs * 2 ** (attempts - 1)
        )

    async def _deliver(self, alert: Alert) -> None:
        values: dict[str, Any]
        try:
            await self.notifier.send(alert.text)
        except KakaoNotConfigured as exc:
            values = {"status": "undeliverable", "last_error": exc.message}
        except KakaoError as exc:
            if exc.retryable and alert.attempts < self.settings.max_attempts:
                delay = self._backoff(alert.attempts)
                values = {
                    "status": "pending",
                    "next_attempt_at": utcnow() + timedelta(seconds=delay),
                    "last_error": exc.message,
                }
            elif exc.retryable:
                values = {
                    "status": "failed",
                    "last_error": f"gave up after {alert.attempts} attempts: {exc.message}",
                }
            else:
                values = {"status": "failed", "last_error": exc.message}
        except Exception as exc:  # e.g. the database blipped while loading tokens: retry later
            logger.warning("alert {} delivery error: {}", alert.id, type(exc).__name__)
            values = {
                "status": "pending" if alert.attempts < self.settings.max_attempts else "failed",
                "next_attempt_at": utcnow() + timedelta(seconds=self._backoff(alert.attempts)),
                "last_error": f"internal error: {type(exc).__name__}",
            }
        else:
            values = {"status": "sent", "sent_at": utcnow(), "last_error": None}
        now = utcnow()
        async with self.db.sessions.begin() as session:
            recorded = await AlertRepository(session).finish(alert.id, now, **values)
        if not recorded:
            logger.warning("alert {} was reclaimed before its outcome was recorded", alert.id)
            return
        status = values["status"]
        ALERTS.labels(status="retry" if status == "pending" else status).inc()
        if status == "sent":
            ALERT_DELIVERY_LATENCY.observe((now - alert.created_at).total_seconds())
        logger.info("alert {} → {} (attempt {})", alert.id, status, alert.attempts)
        if self.event_index is not None:
            # The episode's summary carries the alert status.
            self.event_index.schedule([alert.episode_id])
        await self.stream.publish(
            "alert",
            {
                "id": str(alert.id),
                "episode_id": str(alert.episode_id),
                "source_id": alert.source_id,
                "status": status,
                "attempts": alert.attempts,
                "last_error": values.get("last_error"),
            },
        )

    async def health(self) -> dict[str, Any]:
        async with self.db.sessions() as session:
            pending, oldest = await AlertRepository(session).pending_stats()
        if not self.settings.dispatcher_enabled:
            status = "disabled"
        else:
            status = "healthy" if self.running else "down"
        return {
            "status": status,
            "dispatcher_running": self.running,
            "pending": pending,
            "oldest_pending_age_secs": round((utcnow() - oldest).total_seconds(), 3)
            if oldest
            else None,
            "kakao_configured": self.settings.kakao_configured,
        }
