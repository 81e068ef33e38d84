"""Alembic environment: async engine, one chain for PostgreSQL and SQLite (batch mode on SQLite)."""

from __future__ import annotations

import asyncio
import logging
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401  (registers every table)
from app.core.settings import DatabaseSettings
from app.models.base import Base
from app.repositories.partitions import is_event_partition

config = context.config
if config.attributes.get("database_url"):
    # Run by Sentinel (`sentinel migrate`, `--migrate`, start-up): its loguru sink gets only
    # warnings from Alembic, and the caller prints one summary line instead of each step.
    logging.getLogger("alembic").setLevel(logging.WARNING)
elif config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("database_url") or DatabaseSettings().url


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, _compare_to: object
) -> bool:
    """Leave out the daily partitions of `events` (PostgreSQL): the app makes and drops them."""
    return not (type_ == "table" and reflected and is_event_partition(name or ""))


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    dialect = connection.dialect.name if connection is not None else (url or "").split(":")[0]
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=dialect.startswith("sqlite"),
        compare_type=True,
        include_object=_include_object,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
