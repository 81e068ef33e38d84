"""Agents bound to their sources: per-agent credentials, the source check on ingest, the
sources an admin registered, and which sources are watched for going offline.

An agent token (`sag_` + 256 random bits) is stored only as its SHA-256: the token has full
entropy, so a fast hash is enough and lets a lookup be one indexed equality. It
authenticates as the `service` role (every service route works) with the agent's id and
source patterns on the principal; the shared `ACCESS_TOKEN` stays "any source".

Revocation bound: `AgentCredentialCache` keeps what it learnt of a token for
`AUTH_STATE_CACHE_SECS` per process (the same bound as accounts); the process that rotates
or deletes an agent drops its entries at once, other processes within that many seconds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from app.core.database import Database
from app.core.errors import Conflict, Forbidden, NotFound
from app.core.security import Principal, Role
from app.models.agent import Agent, RegisteredSource
from app.models.base import utcnow
from app.repositories.agents import AgentRepository, RegisteredSourceRepository
from app.repositories.pagination import Page
from app.schemas.agents import AgentCreated, AgentOut, RegisteredSourceOut, WatchedSourceOut
from app.services.alert_text import safe_source_id

AGENT_TOKEN_PREFIX = "sag_"
# `last_seen_at` is written at most this often per agent and process (it is a hint, not a log).
_LAST_SEEN_EVERY = timedelta(seconds=60)
_CACHE_MAX = 10_000


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)


def covered(source_id: str, patterns: Iterable[str]) -> bool:
    """Whether any glob in `patterns` matches `source_id` (case-sensitive)."""
    return any(fnmatch.fnmatchcase(source_id, p) for p in patterns)


def ensure_sources_allowed(principal: Principal | None, source_ids: Iterable[str]) -> None:
    """403 `source_not_allowed` when an agent credential posts for a source outside its
    patterns. Users, the shared token and development's anonymous caller may post for any."""
    if principal is None or principal.source_patterns is None:
        return
    for source_id in source_ids:
        if not principal.may_speak_for(source_id):
            patterns = ", ".join(principal.source_patterns)
            raise Forbidden(
                f"This agent credential may not post for source '{safe_source_id(source_id)}'; "
                f"its source patterns are {patterns}",
                code="source_not_allowed",
            )


@dataclass(frozen=True, slots=True)
class _Known:
    expires: float
    principal: Principal | None


class AgentCredentialCache:
    """Agent token → principal: process memory for `ttl_secs`, else the database."""

    def __init__(self, database: Database, ttl_secs: float) -> None:
        self.db = database
        self.ttl = ttl_secs
        self._local: dict[str, _Known] = {}

    @staticmethod
    def looks_like_agent_token(token: str) -> bool:
        return token.startswith(AGENT_TOKEN_PREFIX) and 20 <= len(token) <= 100

    async def principal(self, token: str) -> Principal | None:
        token_hash = hash_token(token)
        now = time.monotonic()
        known = self._local.get(token_hash)
        if known is not None and known.expires > now:
            return known.principal
        principal = await self._load(token_hash)
        if self.ttl > 0:
            if len(self._local) >= _CACHE_MAX:
                self._local.clear()  # unknown tokens must not grow memory without bound
            self._local[token_hash] = _Known(now + self.ttl, principal)
        return principal

    def forget(self, token_hash: str) -> None:
        """Drop what this process knows of a token (after rotating or deleting its agent)."""
        self._local.pop(token_hash, None)

    async def _load(self, token_hash: str) -> Principal | None:
        # A read only: an unknown token (the common case under attack) never opens a write.
        async with self.db.sessions() as session:
            agent = await AgentRepository(session).by_token_hash(token_hash)
        if agent is None:
            return None
        now = utcnow()
        if agent.last_seen_at is None or now - agent.last_seen_at > _LAST_SEEN_EVERY:
            async with self.db.sessions.begin() as session:
                await AgentRepository(session).touch(agent.id, now)
        return Principal(
            kind="service",
            role=Role.SERVICE,
            agent_id=agent.id,
            source_patterns=tuple(agent.source_patterns),
        )


class AgentService:
    """Creates, lists, rotates and deletes agent credentials (admin)."""

    def __init__(self, database: Database, credentials: AgentCredentialCache) -> None:
        self.db = database
        self.credentials = credentials

    async def create(self, name: str, patterns: list[str], who: str) -> AgentCreated:
        token = new_token()
        async with self.db.sessions.begin() as session:
            repo = AgentRepository(session)
            if any(a.name == name for a in await repo.all()):
                raise Conflict(f"An agent named {name} already exists")
            agent = await repo.add(
                Agent(
                    id=uuid.uuid4(),
                    name=name,
                    token_hash=hash_token(token),
                    source_patterns=sorted(set(patterns)),
                    created_at=utcnow(),
                    created_by=who,
                )
            )
            return _created(agent, token)

    async def list(self) -> list[AgentOut]:
        async with self.db.sessions() as session:
            return [AgentOut.model_validate(a) for a in await AgentRepository(session).all()]

    async def rotate(self, agent_id: uuid.UUID) -> AgentCreated:
        """A new token; the old one stops working at once here (see the module note)."""
        token = new_token()
        async with self.db.sessions.begin() as session:
            agent = await AgentRepository(session).get(agent_id)
            if agent is None:
                raise NotFound(f"No agent with id {agent_id}")
            old_hash = agent.token_hash
            agent.token_hash, agent.rotated_at = hash_token(token), utcnow()
            created = _created(agent, token)
        self.credentials.forget(old_hash)
        return created

    async def delete(self, agent_id: uuid.UUID) -> None:
        async with self.db.sessions.begin() as session:
            repo = AgentRepository(session)
            agent = await repo.get(agent_id)
            if agent is None:
                raise NotFound(f"No agent with id {agent_id}")
            token_hash = agent.token_hash
            await repo.delete(agent_id)
        self.credentials.forget(token_hash)


def _created(agent: Agent, token: str) -> AgentCreated:
    return AgentCreated.model_validate(
        {**AgentOut.model_validate(agent).model_dump(), "token": token}
    )


class SourceRegistry:
    """Registered sources (admin), which sources are watched, and the paged listing."""

    def __init__(self, database: Database, offline_after_secs: int) -> None:
        self.db = database
        self.offline_after_secs = offline_after_secs

    async def register(
        self, source_id: str, watch_offline: bool, name: str | None, who: str
    ) -> RegisteredSourceOut:
        """Create or update the registration of `source_id` (idempotent PUT)."""
        async with self.db.sessions.begin() as session:
            repo = RegisteredSourceRepository(session)
            row = await repo.get(source_id)
            if row is None:
                row = RegisteredSource(source_id=source_id, registered_at=utcnow())
                repo.add(row)
            row.watch_offline, row.name, row.registered_by = watch_offline, name, who
            return RegisteredSourceOut.model_validate(row)

    async def unregister(self, source_id: str) -> None:
        async with self.db.sessions.begin() as session:
            if not await RegisteredSourceRepository(session).delete(source_id):
                raise NotFound(f"Source {safe_source_id(source_id)} is not registered")

    async def page(self, *, limit: int, cursor: str | None) -> Page[WatchedSourceOut]:
        """Sources newest first (by first contact), each with online state and `watched`."""
        now = utcnow()
        async with self.db.sessions() as session:
            page = await RegisteredSourceRepository(session).page_sources(
                limit=limit, cursor=cursor
            )
            ids = [row.id for row in page.items]
            registered = await RegisteredSourceRepository(session).watched_among(ids)
            patterns = await AgentRepository(session).all_patterns()
        items = []
        for row in page.items:
            age = (now - row.last_seen).total_seconds()
            items.append(
                WatchedSourceOut(
                    source_id=row.id,
                    first_seen=row.first_seen,
                    last_seen=row.last_seen,
                    last_event_type=row.last_event_type,
                    last_event_at=row.last_event_at,
                    online=age <= self.offline_after_secs,
                    seconds_since_seen=round(max(age, 0.0), 3),
                    watched=row.id in registered or covered(row.id, patterns),
                )
            )
        return Page(items, page.next_cursor)
