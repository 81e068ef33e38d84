"""Async SQLAlchemy engine, session factory, health probe and migrations."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from loguru import logger
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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
    return create_async_engine(
        settings.url,
        echo=settings.echo,
        # SQL parameters (password hashes, personal data) never reach logs or exceptions.
        hide_parameters=True,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_secs,
        pool_pre_ping=True,  # recover by itself after the database restarts
        pool_recycle=1800,
        connect_args={
            "timeout": settings.connect_timeout_secs,
            "command_timeout": 30,
            "server_settings": {"application_name": "sentinel"},
        },
    )


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
