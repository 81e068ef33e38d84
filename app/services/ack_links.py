"""One-click acknowledgement links carried by every alert message.

INTERFACE (kept stable; helper-owned module): `AckLinks(alerts_settings, security_settings)`,
`links.url(incident_id, channel) -> str | None` (None when links cannot be made).

A link is `<scheme>://<host of ALERT_LINK_URL>/ack/<token>` with
`token = base64url(payload) "." base64url(HMAC-SHA256(key, payload))`: the payload holds a
version byte, the incident id, the expiry (now + ALERT_ACK_LINK_TTL_SECS, unix seconds), a
random nonce and the channel the message went to; the key is derived from JWT_SECRET for this
purpose only. Checking a link is pure CPU (no database) until its signature holds, so a flood
of made-up links costs nothing but a hash each. A link works once (`ack_link_uses` keeps the
hash of each spent signature, written in the same transaction as the acknowledgement).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

from loguru import logger
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import Database
from app.core.security import DEV_JWT_SECRET
from app.core.settings import ALERT_CHANNEL_NAMES, AlertSettings, SecuritySettings
from app.models.alert import AckLinkUse, AckVia
from app.models.base import utcnow
from app.repositories.incidents import IncidentRepository
from app.schemas.incidents import IncidentOut

PURPOSE = b"sentinel-ack-link-v1"
VERSION = 1
# version, incident id, expiry (unix seconds), nonce; the channel's name follows.
_HEAD = struct.Struct(">B16sQ12s")
MAX_TOKEN_CHARS = 256
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    if not _B64URL.match(text):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


class LinkProblem(StrEnum):
    """Why a link was refused before any database work."""

    malformed = "malformed"  # not a token at all (cut off, mangled)
    forged = "forged"  # well formed, but Sentinel did not sign it
    expired = "expired"  # signed, but past its expiry


class LinkRefused(Exception):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class AckClaim:
    """What a genuine link says: this incident, reached through this channel's message."""

    incident_id: uuid.UUID
    channel: str
    expires_at: datetime
    # sha256 of the signature: the primary key of the link's `ack_link_uses` row.
    digest: str


class AckLinks:
    """Makes and checks HMAC-signed, single-incident, expiring acknowledgement URLs."""

    def __init__(self, settings: AlertSettings, security: SecuritySettings) -> None:
        self.settings = settings
        self.security = security
        secret = (security.jwt_secret or DEV_JWT_SECRET).encode()
        self._key = hmac.new(secret, PURPOSE, hashlib.sha256).digest()

    def origin(self) -> str | None:
        """`scheme://host[:port]` of ALERT_LINK_URL, or None when it names no web host."""
        try:
            parts = urlsplit(self.settings.link_url.strip())
            port = parts.port
        except ValueError:
            return None
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            return None
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"{parts.scheme}://{host}" + (f":{port}" if port else "")

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def token(self, incident_id: uuid.UUID, channel: str, now: datetime | None = None) -> str:
        expires = int((now or utcnow()).timestamp()) + self.settings.ack_link_ttl_secs
        payload = _HEAD.pack(VERSION, incident_id.bytes, expires, secrets.token_bytes(12))
        payload += channel.encode()
        return f"{_b64encode(payload)}.{_b64encode(self._sign(payload))}"

    def url(self, incident_id: uuid.UUID, channel: str, now: datetime | None = None) -> str | None:
        origin = self.origin()
        if origin is None:
            return None
        return f"{origin}/ack/{self.token(incident_id, channel, now)}"

    def verify(self, token: str, now: datetime | None = None) -> AckClaim:
        """The claim of a genuine, unexpired link; raises `LinkRefused` otherwise."""
        encoded, dot, signature = token.partition(".")
        if len(token) > MAX_TOKEN_CHARS or not dot:
            raise LinkRefused(LinkProblem.malformed)
        payload, mac = _b64decode(encoded), _b64decode(signature)
        if payload is None or mac is None or len(mac) != hashlib.sha256().digest_size:
            raise LinkRefused(LinkProblem.malformed)
        if not hmac.compare_digest(self._sign(payload), mac):
            raise LinkRefused(LinkProblem.forged)
        if len(payload) <= _HEAD.size:
            raise LinkRefused(LinkProblem.malformed)
        version, incident, expires, _nonce = _HEAD.unpack_from(payload)
        channel = payload[_HEAD.size :].decode("utf-8", "replace")
        if version != VERSION or channel not in ALERT_CHANNEL_NAMES:
            raise LinkRefused(LinkProblem.malformed)
        expires_at = datetime.fromtimestamp(expires, UTC)
        if expires_at <= (now or utcnow()):
            raise LinkRefused(LinkProblem.expired)
        digest = hashlib.sha256(mac).hexdigest()
        return AckClaim(uuid.UUID(bytes=incident), channel, expires_at, digest)


class AckState(StrEnum):
    """What opening or using a link met."""

    ready = "ready"  # genuine and unused: the page offers the button
    acknowledged = "acknowledged"  # this POST acknowledged the incident
    already_acked = "already_acked"  # someone acknowledged it before (nothing changed)
    used = "used"  # this link was spent already
    not_found = "not_found"  # the incident is gone
    malformed = LinkProblem.malformed.value
    forged = LinkProblem.forged.value
    expired = LinkProblem.expired.value


@dataclass(frozen=True)
class AckResult:
    state: AckState
    incident: IncidentOut | None = None
    channel: str | None = None


class _Lost(Exception):
    """Someone else acknowledged between the read and the write: undo the link's use."""


class AckLinkService:
    """Shows (GET) and acts on (POST) an acknowledgement link. A GET never acknowledges."""

    def __init__(self, database: Database, links: AckLinks) -> None:
        self.db = database
        self.links = links

    def _claim(self, token: str, now: datetime) -> AckClaim | AckResult:
        try:
            return self.links.verify(token, now)
        except LinkRefused as refused:
            return AckResult(AckState(refused.problem.value))

    async def _reload(self, claim: AckClaim, state: AckState) -> AckResult:
        async with self.db.sessions() as session:
            incident = await IncidentRepository(session).get(claim.incident_id)
        if incident is None:
            return AckResult(AckState.not_found)
        return AckResult(state, IncidentOut.model_validate(incident), claim.channel)

    async def look(self, token: str, now: datetime | None = None) -> AckResult:
        """What the page shows; changes nothing (link previewers fetch with GET)."""
        claim = self._claim(token, now or utcnow())
        if isinstance(claim, AckResult):
            return claim
        async with self.db.sessions() as session:
            incident = await IncidentRepository(session).get(claim.incident_id)
            used = await session.get(AckLinkUse, claim.digest) is not None
        if incident is None:
            return AckResult(AckState.not_found)
        state = (
            AckState.used
            if used
            else AckState.already_acked
            if incident.acked_at is not None
            else AckState.ready
        )
        return AckResult(state, IncidentOut.model_validate(incident), claim.channel)

    async def acknowledge(self, token: str, now: datetime | None = None) -> AckResult:
        """Spend the link and acknowledge its incident, in one transaction."""
        now = now or utcnow()
        claim = self._claim(token, now)
        if isinstance(claim, AckResult):
            return claim
        try:
            async with self.db.sessions.begin() as session:
                state = await self._spend(session, claim, now)
        except IntegrityError:  # the same link, used at the same moment elsewhere
            state = AckState.used
        except _Lost:
            state = AckState.already_acked
        if state == AckState.acknowledged:
            logger.info(
                "incident {} acknowledged via {} ({})", claim.incident_id, "link", claim.channel
            )
        return await self._reload(claim, state)

    async def _spend(self, session: AsyncSession, claim: AckClaim, now: datetime) -> AckState:
        repo = IncidentRepository(session)
        incident = await repo.get(claim.incident_id)
        if incident is None:
            return AckState.not_found
        if await session.get(AckLinkUse, claim.digest) is not None:
            return AckState.used
        if incident.acked_at is not None:
            return AckState.already_acked
        session.add(
            AckLinkUse(
                token_hash=claim.digest,
                incident_id=claim.incident_id,
                channel=claim.channel,
                used_at=now,
            )
        )
        await session.flush()
        who = f"link ({claim.channel})"
        if not await repo.acknowledge(
            claim.incident_id, now, who, AckVia.link.value, claim.channel
        ):
            raise _Lost
        return AckState.acknowledged
