"""The database-only commands are fast and quiet (issue 26, point 5): they import neither torch
nor Alembic, migrate only with `--migrate`, say a schema behind the code in one line (exit 2),
print no Alembic lines, and every sub-command and argument explains itself in `--help`."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.database import run_migrations
from tests.conftest import _DB_URL, SHARED_PG_URL, _pg_admin_url

SENTINEL = str(Path(sys.executable).with_name("sentinel"))
EMAIL = "boss@example.com"
# Every command that needs only the database (and Redis when configured).
DB_ONLY = {
    "create-admin": ["create-admin", "--email", EMAIL, "--password", "pass1234word"],
    "set-role": ["set-role", EMAIL, "operator"],
    "unlock": ["unlock", EMAIL],
    "retention": ["retention", "--dry-run"],
    "knowledge check": ["knowledge", "check"],
}
# Modules a database-only command must not load (torch alone took ~8 s of an 11 s `set-role`).
HEAVY = {"torch", "alembic", "mako", "app.container", "sentence_transformers", "transformers"}
ALEMBIC_CHATTER = re.compile(r"alembic|Running upgrade|Context impl|non-transactional DDL", re.I)


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.core.settings import ROOT_DIR

    head = ScriptDirectory.from_config(Config(str(ROOT_DIR / "alembic.ini"))).get_current_head()
    assert head is not None
    return head


# --- --help -------------------------------------------------------------------------------


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _words(s: str) -> str:
    return " ".join(s.split())


def test_help_of_every_sub_command_explains_each_argument(capsys, monkeypatch):
    """`sentinel [SUB ...] --help` for every sub-command, recursively: it has a description and
    the help of each argument and sub-command is non-empty and printed."""
    from app.cli import build_parser, main

    monkeypatch.setenv("COLUMNS", "100")
    paths = list(_parsers(build_parser()))
    assert len(paths) > 10  # serve, migrate, ..., knowledge check, the model commands
    for path, parser in paths:
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        assert done.value.code == 0, path
        shown = _words(capsys.readouterr().out)
        if path:
            assert parser.description and _words(parser.description) in shown, path
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, (path, name)
            assert _words(formatter._expand_help(action)) in shown, (path, name)
            for choice in getattr(action, "_choices_actions", []):
                assert choice.help and _words(choice.help) in shown, (path, choice.dest)


# --- database-only commands, in a subprocess as a user runs them ----------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    errors: list[str]  # stderr without the import-time lines
    modules: set[str]  # every module the process imported


def _sentinel(env: dict[str, str], cwd: Path, *args: str) -> Run:
    """`sentinel ARGS` under `python -X importtime`, which lists every module it imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", SENTINEL, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=240,
    )
    modules, errors = set(), []
    for line in done.stderr.splitlines():
        if line.startswith("import time:"):
            modules.add(line.rsplit("|", 1)[1].strip())
        elif line.strip():
            errors.append(line)
    return Run(done.returncode, done.stdout, errors, modules)


def _heavy(run: Run) -> set[str]:
    return {m for m in run.modules if m in HEAVY or m.split(".")[0] in HEAVY}


@pytest.fixture
async def fresh_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database on the suite's backend: a new PostgreSQL database, or a SQLite path."""
    if not _DB_URL.startswith("postgresql"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        return
    name = f"sentinel_cli_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(_pg_admin_url(_DB_URL), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(_DB_URL).set(database=name).render_as_string(hide_password=False)
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture
async def cli_env(fresh_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The environment of a user's shell pointed at the fresh database (and the suite's Redis,
    under a prefix of its own that is removed afterwards)."""
    prefix = f"sentinel-cli-test-{uuid.uuid4().hex[:8]}:"
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DB_", "REDIS_"))
    }
    yield {
        **base,
        "DATABASE_URL": fresh_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "CHROMA_PATH": str(tmp_path / "chroma"),
        "EVENT_LOG_PATH": str(tmp_path / "events.jsonl"),
        "LOG_LEVEL": "INFO",  # the default: what a user sees
    }
    if redis_url:
        from redis import asyncio as aioredis

        client = aioredis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _has_version_table(url: str) -> bool:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'"
                    if url.startswith("sqlite")
                    else "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_name = 'alembic_version'"
                )
            )
            return bool(found)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("command", list(DB_ONLY))
async def test_a_schema_behind_the_code_is_one_line_and_exit_2(
    command, cli_env, fresh_url, tmp_path
):
    run = await asyncio.to_thread(_sentinel, cli_env, tmp_path, *DB_ONLY[command])
    assert run.returncode == 2, (run.stdout, run.errors)
    assert run.stdout == ""
    assert run.errors == [
        f"sentinel: database schema is at base (empty), this code expects {_head()}: "
        "run `sentinel migrate` or pass --migrate"
    ]
    assert not _heavy(run), _heavy(run)
    # Nothing was migrated, and no SQLite file was left behind.
    if fresh_url.startswith("sqlite"):
        assert not (tmp_path / "cli.db").exists()
    else:
        assert not await _has_version_table(fresh_url)


async def test_migrate_upgrades_once_then_every_command_runs_without_torch_or_alembic(
    cli_env, redis_url, tmp_path
):
    run = await asyncio.to_thread(
        _sentinel, cli_env, tmp_path, *DB_ONLY["create-admin"], "--migrate"
    )
    assert run.returncode == 0, run.errors
    assert run.stdout.startswith(f"admin created: {EMAIL}")
    assert f"database upgraded from base to {_head()}" in run.errors
    assert not [line for line in run.errors if ALEMBIC_CHATTER.search(line)], run.errors
    assert "torch" not in {m.split(".")[0] for m in run.modules}

    expected = {
        "set-role": f"{EMAIL} is now operator",
        "unlock": (
            f"sign-in counters of {EMAIL} cleared"
            if redis_url
            else "REDIS_URL is empty: each server process keeps its sign-in counters in memory"
        ),
        "retention": "events             would delete",
        "knowledge check": "consistent",
    }
    for command, says in expected.items():
        run = await asyncio.to_thread(_sentinel, cli_env, tmp_path, *DB_ONLY[command])
        assert run.returncode == 0, (command, run.errors)
        assert says in run.stdout, (command, run.stdout)
        assert not _heavy(run), (command, _heavy(run))
        assert not [line for line in run.errors if ALEMBIC_CHATTER.search(line)], run.errors
        if command == "set-role":  # the audit line names who changed the account
            assert any("updated by the command line: role=operator" in e for e in run.errors)


async def test_a_schema_newer_than_the_code_is_one_line_even_with_migrate(
    cli_env, fresh_url, tmp_path
):
    await asyncio.to_thread(run_migrations, fresh_url)
    engine = create_async_engine(fresh_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    await engine.dispose()
    run = await asyncio.to_thread(
        _sentinel, cli_env, tmp_path, "set-role", EMAIL, "admin", "--migrate"
    )
    assert run.returncode == 2
    assert run.errors == [
        "sentinel: database schema is at 9999_future, which this code does not know (written "
        f"by a newer version?); this code expects {_head()}"
    ]


async def test_unlock_with_redis_down_says_so_instead_of_claiming_success(
    cli_env, fresh_url, tmp_path
):
    """The counters live in Redis: clearing an in-process stand-in would be a false "cleared"."""
    await asyncio.to_thread(run_migrations, fresh_url)
    env = {**cli_env, "REDIS_URL": "redis://:secret-pw@127.0.0.1:1/0"}
    run = await asyncio.to_thread(_sentinel, env, tmp_path, "unlock", EMAIL)
    assert run.returncode == 2 and run.stdout == ""
    assert run.errors[-1] == "sentinel: Redis (127.0.0.1:1) does not answer"
    assert not any("secret-pw" in line for line in run.errors)


def test_a_missing_postgres_database_is_one_line_and_not_created(cli_env, tmp_path):
    name = f"sentinel_cli_missing_{uuid.uuid4().hex[:8]}"
    url = make_url(SHARED_PG_URL).set(database=name).render_as_string(hide_password=False)
    run = _sentinel({**cli_env, "DATABASE_URL": url}, tmp_path, "set-role", EMAIL, "admin")
    assert run.returncode == 2
    assert len(run.errors) == 1 and f'PostgreSQL database "{name}" does not exist' in run.errors[0]
    assert "createdb" in run.errors[0] and "DB_CREATE_IF_MISSING=true" in run.errors[0]


# --- migration scripts -------------------------------------------------------------------


def test_the_head_read_from_the_scripts_is_alembics():
    """The schema check reads revision ids from the scripts' text instead of importing Alembic."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.cli_context import script_head, script_revisions
    from app.core.settings import ROOT_DIR

    script = ScriptDirectory.from_config(Config(str(ROOT_DIR / "alembic.ini")))
    assert script_head() == script.get_current_head()
    assert script_revisions()[0] == {r.revision for r in script.walk_revisions()}


def test_each_migration_message_is_one_line():
    """Alembic logs a script's first paragraph with each step; a two-line one printed a stray
    "offline sources" line under `Running upgrade 0004_authz -> 0005_alerting`."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.core.settings import ROOT_DIR

    script = ScriptDirectory.from_config(Config(str(ROOT_DIR / "alembic.ini")))
    assert [r.revision for r in script.walk_revisions() if "\n" in r.doc] == []
