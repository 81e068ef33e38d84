"""`sentinel migrate` / `create-admin` / `serve` tell the truth (issue 15 item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

SENTINEL = str(Path(sys.executable).with_name("sentinel"))
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"


def run(tmp_path: Path, *args: str, stdin: str | None = None, **env: str):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DB_"))}
    full_env = {
        **base,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 's.db'}",
        "LOG_LEVEL": "WARNING",
        "CHROMA_PATH": str(tmp_path / "chroma"),
        **env,
    }
    return subprocess.run(
        [SENTINEL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=full_env,
        timeout=240,
    )


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.core.settings import ROOT_DIR

    head = ScriptDirectory.from_config(Config(str(ROOT_DIR / "alembic.ini"))).get_current_head()
    assert head is not None
    return head


def test_migrate_upgrades_and_downgrades_to_named_revisions(tmp_path):
    head = _head()
    r = run(tmp_path, "migrate", "--revision", "0002_events")
    assert r.returncode == 0 and "upgraded from base to 0002_events" in r.stdout, r.stderr
    assert f"upgraded from 0002_events to {head}" in run(tmp_path, "migrate").stdout
    r = run(tmp_path, "migrate", "--revision", "0002_events")
    assert r.returncode == 2 and "--downgrade" in r.stderr
    assert r.stderr.count("\n") == 1
    r = run(tmp_path, "migrate", "--revision", "base", "--downgrade")
    assert r.returncode == 0 and f"downgraded from {head} to base" in r.stdout, r.stderr
    assert "already at" in run(tmp_path, "migrate", "--revision", "base").stdout


def test_migrate_unknown_revision_is_one_line(tmp_path):
    r = run(tmp_path, "migrate", "--revision", "nope")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown revision 'nope'" in r.stderr
    assert "Traceback" not in r.stderr


def test_create_admin_validates_reads_stdin_and_refuses_to_overwrite(tmp_path):
    r = run(tmp_path, "create-admin", "--email", "bad", stdin="pass1234word\n")
    assert r.returncode == 2 and "not a valid e-mail" in r.stderr
    r = run(tmp_path, "create-admin", "--email", "boss@example.com", stdin="pass1234word\n")
    assert r.returncode == 0 and "admin created" in r.stdout, r.stderr
    r = run(tmp_path, "create-admin", "--email", "boss@example.com", stdin="other5678pass\n")
    assert r.returncode == 2 and "--reset-password" in r.stderr
    r = run(
        tmp_path,
        "create-admin",
        "--email",
        "boss@example.com",
        "--reset-password",
        stdin="other5678pass\n",
    )
    assert r.returncode == 0 and "admin updated" in r.stdout, r.stderr


def test_every_option_has_help_text(tmp_path):
    from app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in ("serve", "migrate", "create-admin"):
        for action in sub.choices[name]._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, (name, action.option_strings)


def test_serve_on_an_unreachable_postgres_says_so_in_one_line(tmp_path):
    r = run(tmp_path, "serve", DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/x")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = [x for x in r.stderr.splitlines() if x.startswith("sentinel:")]
    assert len(line) == 1 and "cannot reach PostgreSQL at 127.0.0.1:1" in line[0]


# Part of the PostgreSQL run of the suite (the SQLite run checks the unreachable case above).
if (os.environ.get("TEST_DATABASE_URL") or "").startswith("postgresql"):

    async def test_serve_on_a_missing_postgres_database_says_so_in_one_line_or_creates_it(tmp_path):
        name = f"sentinel_missing_{uuid.uuid4().hex[:8]}"
        r = run(tmp_path, "serve", "--port", "1", DATABASE_URL=PG + name)
        assert r.returncode == 2
        line = [x for x in r.stderr.splitlines() if x.startswith("sentinel:")]
        assert len(line) == 1 and f'"{name}" does not exist' in line[0] and "createdb" in line[0]
        assert "Traceback" not in r.stderr
        r = run(tmp_path, "migrate", DATABASE_URL=PG + name, DB_CREATE_IF_MISSING="true")
        assert r.returncode == 0, r.stderr
        engine = create_async_engine(PG + "postgres", isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()
