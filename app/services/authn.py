"""Who is calling: the bearer token checked against the account it belongs to.

One `Authenticator` serves the production/staging gate and the route dependencies. The service
token is compared in memory (no database); a per-agent token (`sag_…`) is looked up by its hash
through `AgentCredentialCache` (app/services/agents.py), with the same staleness bound. A
user JWT is checked for signature, `exp`, `iss` and `aud`, then against the account's state —
active, current token version, current role — which `AccountStateCache` keeps for
`AUTH_STATE_CACHE_SECS` (default 5 s) per process, so the hot path does not query the database
on every request.

Staleness bound: the process that changes an account (deactivation, password change, sign-out
everywhere, role change) drops its entry at once; with Redis the shared entry is deleted too,
so other processes see the change after at most `AUTH_STATE_CACHE_SECS`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from redis.exceptions import RedisError

from app.core.database import Database
from app.core.redis import RedisManager
from app.core.security import Principal, Role, TokenService, parse_role
from app.repositories.users import UserRepository
from app.services.agents import AgentCredentialCache

# The shared (Redis) copy lives a little longer than the local one; a bump deletes it.
_SHARED_TTL_SECS = 60


@dataclass(frozen=True, slots=True)
class AccountState:
    """What a token check needs to know about an account."""

    active: bool
    token_version: int
    role: Role


class AccountStateCache:
    """Account state by user id: process memory → Redis (when configured) → database."""

    def __init__(self, database: Database, redis: RedisManager, ttl_secs: float) -> None:
        self.db = database
        self.redis = redis
        self.ttl = ttl_secs
        self._local: dict[uuid.UUID, tuple[float, AccountState | None]] = {}

    def _key(self, user_id: uuid.UUID) -> str:
        return self.redis.key("auth", "account", str(user_id))

    async def get(self, user_id: uuid.UUID) -> AccountState | None:
        now = time.monotonic()
        entry = self._local.get(user_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        state = await self._shared(user_id)
        if state is None:
            state = await self._load(user_id)
            await self._share(user_id, state)
        if self.ttl > 0:
            if len(self._local) > 10_000:
                self._local.clear()
            self._local[user_id] = (now + self.ttl, state)
        return state

    async def invalidate(self, user_id: uuid.UUID) -> None:
        """Forget an account's state here and in Redis (call after changing it)."""
        self._local.pop(user_id, None)
        client = self.redis.client()
        if client is not None:
            try:
                await client.delete(self._key(user_id))
            except (RedisError, OSError) as exc:
                self.redis.mark_down(exc)

    async def _load(self, user_id: uuid.UUID) -> AccountState | None:
        async with self.db.sessions() as session:
            user = await UserRepository(session).get(user_id)
        if user is None:
            return None
        return AccountState(user.is_active, user.token_version, parse_role(user.role))

    async def _shared(self, user_id: uuid.UUID) -> AccountState | None:
        client = self.redis.client()
        if client is None:
            return None
        try:
            raw = await client.get(self._key(user_id))
        except (RedisError, OSError) as exc:
            self.redis.mark_down(exc)
            return None
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        active, version, role = text.split("|")
        return AccountState(active == "1", int(version), parse_role(role))

    async def _share(self, user_id: uuid.UUID, state: AccountState | None) -> None:
        client = self.redis.client()
        if client is None or state is None:
            return
        value = f"{int(state.active)}|{state.token_version}|{state.role}"
        try:
            await client.set(self._key(user_id), value, ex=_SHARED_TTL_SECS)
        except (RedisError, OSError) as exc:
            self.redis.mark_down(exc)


class Authenticator:
    """Turns a bearer token into a principal, or None when it must be refused."""

    def __init__(
        self,
        tokens: TokenService,
        accounts: AccountStateCache,
        agents: AgentCredentialCache | None = None,
    ) -> None:
        self.tokens = tokens
        self.accounts = accounts
        self.agents = agents

    async def authenticate(self, token: str) -> Principal | None:
        if self.tokens.is_service_token(token):
            return Principal(kind="service", role=Role.SERVICE)
        if self.agents is not None and self.agents.looks_like_agent_token(token):
            # A per-agent credential: the service role, bound to the agent's sources.
            return await self.agents.principal(token)
        claimed = self.tokens.decode_user(token)
        if claimed is None or claimed.user_id is None:
            return None
        state = await self.accounts.get(claimed.user_id)
        if state is None or not state.active or state.token_version != claimed.token_version:
            return None
        # The role is the account's current one, not the one the token was issued with.
        return Principal(
            kind="user",
            user_id=claimed.user_id,
            role=state.role,
            token_version=state.token_version,
        )
