"""Async SQLAlchemy engine, session factory, health probe and migrations."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from loguru import logger
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.encoding import dumps, loads
from app.core.settings import ROOT_DIR, DatabaseSettings


def _ensure_sqlite_dir(url: str) -> None:
    db = make_url(url).database
    if db and db != ":memory:" and not db.startswith("file:"):
        Path(db).parent.mkdir(parents=True, exist_ok=True)


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """Build the engine for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""
    if settings.is_sqlite:
        _ensure_sqlite_dir(settings.url)
        engine = create_async_engine(
            settings.url,
            echo=settings.echo,
            # SQL parameters (password hashes, personal data) never reach logs or exceptions.
            hide_parameters=True,
            connect_args={"timeout": 30},
            pool_pre_ping=False,
            json_serializer=dumps,
            json_deserializer=loads,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the writer; busy_timeout waits instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_async_engine(
        settings.url,
        echo=settings.echo,
        # SQL parameters (password hashes, personal data) never reach logs or exceptions.
        hide_parameters=True,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_secs,
        # Not `pool_pre_ping`: a ping on every checkout is one more round trip per transaction
        # (a tenth of an event's cost); `_ping_idle_connections` pings only idle ones.
        pool_pre_ping=False,
        pool_recycle=1800,
        json_serializer=dumps,  # JSON columns (events' probs and metadata) on the hot path
        json_deserializer=loads,  # open episodes' aggregates, read back on every group
        connect_args={
            "timeout": settings.connect_timeout_secs,
            "command_timeout": 30,
            "server_settings": {"application_name": "sentinel"},
        },
    )
    _ping_idle_connections(engine)
    return engine


# A connection back in the pool for longer than this is pinged before reuse. Busy connections
# skip the ping; one that broke while busy fails its statement, which invalidates the pool
# (SQLAlchemy's disconnect handling), so a database restart still heals by itself.
PING_IDLE_SECS = 5.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """SQLAlchemy's "pessimistic disconnect handling", custom: ping at checkout only after idling."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECS:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another one.
            raise DisconnectionError(
                f"idle connection failed its ping: {type(exc).__name__}"
            ) from exc


def affected_rows(result: object) -> int:
    """Rows an UPDATE/DELETE touched (`Result` from `session.execute` of a DML statement)."""
    return int(getattr(result, "rowcount", 0) or 0)


class Database:
    """Owns the engine and the session factory; services open transactions with `sessions`."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> float:
        """Round-trip `SELECT 1`; returns latency in milliseconds."""
        started = time.perf_counter()
        async with asyncio.timeout(self.settings.connect_timeout_secs + 2):
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    def pool_stats(self) -> dict[str, Any]:
        pool = self.engine.pool
        stats: dict[str, Any] = {"class": type(pool).__name__}
        for name in ("size", "checkedin", "checkedout", "overflow"):
            fn = getattr(pool, name, None)
            if callable(fn):
                try:
                    stats[name] = fn()
                except Exception:  # noqa: S112 - some pools lack a counter
                    continue
        return stats

    async def dispose(self) -> None:
        await self.engine.dispose()


def run_migrations(url: str, revision: str = "head") -> None:
    """`alembic upgrade <revision>` for `url`; blocking, call from a thread inside a loop."""
    from alembic import command
    from alembic.config import Config

    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    cfg = Config(str(ROOT_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT_DIR / "migration"))
    cfg.attributes["database_url"] = url
    logger.info("running migrations to {}", revision)
    command.upgrade(cfg, revision)
