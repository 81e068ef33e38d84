"""What the database-only commands (`create-admin`, `unlock`, `set-role`, `retention`,
`knowledge check`) build: the database, Redis when configured, and the few services they call.

They import those services from their modules instead of `app.container`, which pulls in
torch, every client and every service (about 8 s before the command does anything). Nothing
is migrated unless the command was given `--migrate`: a schema behind the code is one line and
exit 2. The wiring mirrors `app/container.py` for these services only.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from app.core.database import Database
from app.core.logging import setup_logging
from app.core.redis import RedisManager
from app.core.settings import ROOT_DIR, Settings

if TYPE_CHECKING:
    from app.clients.vector_store import VectorStore
    from app.container import Container
    from app.core.lock import LockService
    from app.services.knowledge import KnowledgeService
    from app.services.retention import RetentionService
    from app.services.users import UserService

SCHEMA_EXIT = 2

CommandWork = Callable[["CommandContext"], Awaitable[int]]


class SchemaNotReady(Exception):
    """The database cannot serve this code as it is; the message is one line."""


_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def script_revisions() -> tuple[set[str], set[str]]:
    """(revisions, parents) named by the migration scripts' `revision`/`down_revision` lines."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (ROOT_DIR / "migration" / "versions").glob("*.py"):
        for name, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (revisions if name == "revision" else parents).update(_QUOTED.findall(value))
    return revisions, parents


def script_head() -> str:
    """The newest revision of the migration scripts, read from their `revision` and
    `down_revision` lines (Alembic itself would import mako and every script: ~1 s)."""
    revisions, parents = script_revisions()
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    # Branches or an unusual script layout: ask Alembic.
    from alembic.script import ScriptDirectory

    from app.core.migrations import _config

    return ScriptDirectory.from_config(_config("sqlite://")).get_current_head() or "base"


def _missing_sqlite_file(url: str) -> bool:
    """A SQLite URL whose file does not exist yet (connecting would create an empty one)."""
    if not url.startswith("sqlite"):
        return False
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return False
    return not Path(name).exists()


class CommandContext:
    """Settings, the database and, built on first use, the services of one command run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(settings.db)
        self.redis = RedisManager(settings.redis)
        self._locks: LockService | None = None
        self._vectors: VectorStore | None = None

    # -- schema ------------------------------------------------------------------------------

    async def _read_revision(self) -> str | None:
        from sqlalchemy import inspect, text

        async with self.database.engine.connect() as conn:
            if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
                return None
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            return None if revision is None else str(revision)

    async def stored_revision(self) -> str | None:
        """The database's revision (None: empty); one that cannot be read is one line."""
        url = self.settings.db.url
        if _missing_sqlite_file(url):
            return None
        try:
            return await self._read_revision()
        except Exception as first:  # any driver error: find the reason, say it in one line
            from app.core.migrations import ensure_database

            create = self.settings.db.create_if_missing
            problem = await asyncio.to_thread(ensure_database, url, create)
            if problem:
                raise SchemaNotReady(problem) from first
            try:  # DB_CREATE_IF_MISSING may just have created it
                return await self._read_revision()
            except Exception as exc:
                raise SchemaNotReady(
                    f"cannot read the schema revision: {type(exc).__name__}: {exc}"
                ) from exc

    async def prepare_schema(self, migrate: bool) -> None:
        """Raise `SchemaNotReady` unless the schema matches the code; with `migrate`, upgrade
        it first (saying so in one line on stderr)."""
        current, head = await self.stored_revision(), script_head()
        if current == head:
            return
        if current is not None and current not in script_revisions()[0]:
            raise SchemaNotReady(
                f"database schema is at {current}, which this code does not know (written by "
                f"a newer version?); this code expects {head}"
            )
        if not migrate:
            raise SchemaNotReady(
                f"database schema is at {current or 'base (empty)'}, this code expects {head}: "
                "run `sentinel migrate` or pass --migrate"
            )
        from app.core.migrations import Direction, Plan, apply

        # Alembic runs its own event loop: in a thread, beside this one.
        await asyncio.to_thread(apply, self.settings.db.url, Plan(current, head, Direction.UPGRADE))
        print(f"database upgraded from {current or 'base'} to {head}", file=sys.stderr)

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis when configured (shared counters, caches and locks live there);
        without it the services use their in-process fallbacks."""
        if self.redis.enabled:
            await self.redis.start()

    async def close(self) -> None:
        await self.redis.stop()
        await self.database.dispose()

    # -- services ----------------------------------------------------------------------------

    def locks(self) -> LockService:
        from app.core.lock import LockService

        if self._locks is None:
            self._locks = LockService(redis=self.redis)
        return self._locks

    def vector_store(self) -> VectorStore:
        """Chroma opens on the first call that needs it; the embedder loads on the first
        text it embeds (only `knowledge check --repair` does)."""
        from app.clients.vector_store import VectorStore
        from app.ml.embedding import Embedder

        if self._vectors is None:
            llm = self.settings.llm
            embedder = Embedder(settings=llm, device=self.settings.model.device)
            self._vectors = VectorStore(settings=llm, embedder=embedder)
        return self._vectors

    def user_service(self) -> UserService:
        from app.clients.google import GoogleTokenVerifier
        from app.clients.mailer import AccountMailer
        from app.core.rate_limit import RateLimiter
        from app.core.security import PasswordService, TokenService
        from app.services.authn import AccountStateCache
        from app.services.users import UserService

        s = self.settings
        return UserService(
            database=self.database,
            passwords=PasswordService(),
            tokens=TokenService(settings=s.security),
            accounts=AccountStateCache(
                database=self.database,
                redis=self.redis,
                ttl_secs=s.security.auth_state_cache_secs,
            ),
            limiter=RateLimiter(settings=s.rate_limit, redis=self.redis, security=s.security),
            settings=s,
            google=GoogleTokenVerifier(settings=s.security),
            mailer=AccountMailer(settings=s.alerts),
        )

    def retention_service(self) -> RetentionService:
        from app.services.event_log import EventLog
        from app.services.retention import RetentionService

        return RetentionService(
            database=self.database,
            settings=self.settings.retention,
            locks=self.locks(),
            event_log=EventLog(settings=self.settings.events),
            vector_store=self.vector_store(),
        )

    def knowledge_service(self) -> KnowledgeService:
        from app.core.tokenizer import Tokenizer
        from app.repositories.rag_cache import IndexVersionStore
        from app.services.event_knowledge import EventKnowledgeIndexer
        from app.services.knowledge import KnowledgeService
        from app.services.retrieval import KnowledgeIndex

        s, vectors = self.settings, self.vector_store()
        index_version = IndexVersionStore(redis=self.redis)
        return KnowledgeService(
            database=self.database,
            vector_store=vectors,
            index_version=index_version,
            locks=self.locks(),
            settings=s.llm,
            index=KnowledgeIndex(
                database=self.database, vector_store=vectors, tokenizer=Tokenizer(), settings=s.llm
            ),
            events=EventKnowledgeIndexer(
                database=self.database,
                vector_store=vectors,
                index_version=index_version,
                timezone=s.alerts.timezone,
            ),
        )


async def _run(context: CommandContext, migrate: bool, work: CommandWork) -> int:
    try:
        await context.prepare_schema(migrate)
        await context.start()
        return await work(context)
    except SchemaNotReady as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        return SCHEMA_EXIT
    finally:
        await context.close()


def run_command(settings: Settings, migrate: bool, work: CommandWork) -> int:
    """Set up logging, check the schema (or migrate it with `migrate`), run `work` and close
    the context; a schema that is not ready is one line on stderr and exit 2."""
    setup_logging(settings.log)
    return asyncio.run(_run(CommandContext(settings), migrate, work))


def migrated_container(log_level: str | None = None) -> Container:
    """For the commands that need the whole app (models, the assistant): settings from the
    environment, logging set up (at `log_level` if given), the schema migrated, a container."""
    from app.container import Container
    from app.core.database import run_migrations

    settings = Settings()
    log = (
        settings.log if log_level is None else settings.log.model_copy(update={"level": log_level})
    )
    setup_logging(log)
    run_migrations(settings.db.url)
    container = Container()
    container.settings.override(settings)
    return container
