"""What `sentinel migrate` and `serve` need beyond `alembic upgrade`: the database's current
revision, upgrade or downgrade to a named revision, and a missing PostgreSQL database found
(or created) before a traceback would say so."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.database import _ensure_sqlite_dir
from app.core.settings import ROOT_DIR


class Direction(StrEnum):
    """What reaching a target revision means for the database."""

    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    NONE = "none"


class MigrationRefused(Exception):
    """A migration request that cannot or should not run; the message is one line."""


@dataclass(frozen=True)
class Plan:
    """From `current` to `target` (revision ids; None is the empty database)."""

    current: str | None
    target: str | None
    direction: Direction


def _config(url: str) -> Config:
    cfg = Config(str(ROOT_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT_DIR / "migration"))
    cfg.attributes["database_url"] = url
    return cfg


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config("sqlite://"))


def known_revisions() -> list[str]:
    """base, every revision from oldest to newest, head."""
    revisions = [r.revision for r in _script().walk_revisions()]
    return ["base", *reversed(revisions), "head"]


async def _current(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def current_revision(url: str) -> str | None:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    return asyncio.run(_current(url))


def plan(url: str, revision: str) -> Plan:
    """Resolve `revision` (id, unique prefix, base, head) against the database's current one."""
    script = _script()
    try:
        if revision == "base":
            target = None
        else:
            resolved = script.get_revision(revision)
            if resolved is None:
                raise MigrationRefused(f"unknown revision {revision!r}")
            target = resolved.revision
    except (CommandError, KeyError) as exc:
        raise MigrationRefused(
            f"unknown revision {revision!r}; known: {', '.join(known_revisions())}"
        ) from exc
    current = current_revision(url)
    if current == target:
        return Plan(current, target, Direction.NONE)
    if current is None:
        return Plan(current, target, Direction.UPGRADE)
    below_current = {r.revision for r in script.iterate_revisions(current, "base")}
    if target is None or target in below_current:
        return Plan(current, target, Direction.DOWNGRADE)
    return Plan(current, target, Direction.UPGRADE)


def apply(url: str, step: Plan) -> None:
    cfg = _config(url)
    if step.direction is Direction.UPGRADE:
        command.upgrade(cfg, step.target or "head")
    elif step.direction is Direction.DOWNGRADE:
        command.downgrade(cfg, step.target or "base")


async def _database_exists(url: str) -> tuple[bool, str]:
    parsed = make_url(url)
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            found = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": parsed.database},
            )
            return found is not None, parsed.database or ""
    finally:
        await admin.dispose()


async def _create_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            name = (parsed.database or "").replace('"', '""')
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


def ensure_database(url: str, create: bool) -> str | None:
    """For PostgreSQL: None when the database exists (or was created), else one line saying
    which database is missing (or unreachable) and the command that fixes it."""
    if not url.startswith("postgresql"):
        return None
    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    try:
        exists, name = asyncio.run(_database_exists(url))
    except Exception as exc:  # any driver error: one line, not a traceback
        return (
            f"cannot reach PostgreSQL at {where} as {parsed.username}: {type(exc).__name__}: {exc}"
        )
    if exists:
        return None
    if create:
        asyncio.run(_create_database(url))
        return None
    user = f" -U {parsed.username}" if parsed.username else ""
    return (
        f'PostgreSQL database "{name}" does not exist on {where}; create it with '
        f"`createdb -h {parsed.host or 'localhost'} -p {parsed.port or 5432}{user} {name}` "
        "or set DB_CREATE_IF_MISSING=true"
    )
