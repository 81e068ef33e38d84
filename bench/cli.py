"""How long the database-only CLI commands take, beside an anchor doing the least such a command
must do: start Python, import SQLAlchemy and run one SELECT on the same database.

    uv run python bench/cli.py                    # temp SQLite, no Redis, 7 runs of each
    uv run python bench/cli.py --runs 11 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/sentinel_bench_cli \\
        --redis-url redis://127.0.0.1:6379/0      # PostgreSQL + Redis

Each command runs as a user runs it: `.venv/bin/sentinel ...` in a fresh process (and
`set-role` once more through `uv run`, which adds uv's own start-up and lock check). Commands
run round-robin so a burst of load from other processes spreads over all of them. Prints the
median wall time and the median CPU time (user + system, less sensitive to other processes) of
each, the ratio of the medians to the anchor's, and the load average before and after. The
setup migrates the database with `create-admin --migrate` (timed once, not in the table). A
PostgreSQL database that did not exist is created and dropped afterwards. Exit 1 when a
command fails or a median wall time exceeds --limit (3 s).

`PYTHONDONTWRITEBYTECODE=1` (set on some machines) makes every run compile each imported module
again; the header says whether it is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

BIN = Path(sys.executable).parent
SENTINEL = str(BIN / "sentinel")
EMAIL = "bench-admin@example.com"
PASSWORD = "bench-pass-1234"
ANCHOR = (
    "import asyncio, sys\n"
    "from sqlalchemy import text\n"
    "from sqlalchemy.ext.asyncio import create_async_engine\n"
    "async def main():\n"
    "    engine = create_async_engine(sys.argv[1])\n"
    "    async with engine.connect() as conn:\n"
    "        await conn.execute(text('SELECT 1'))\n"
    "    await engine.dispose()\n"
    "asyncio.run(main())\n"
)


@dataclass
class Row:
    """One timed command line and its samples."""

    name: str
    argv: list[str]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, user + system CPU) seconds of one run; raises when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


async def _postgres(url: str, create: bool) -> bool:
    """With `create`: create the database when missing and say whether it did; else drop it."""
    parsed = make_url(url)
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = (parsed.database or "").replace('"', '""')
    try:
        async with admin.connect() as conn:
            if not create:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                return True
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            return not exists
    finally:
        await admin.dispose()


def rows(database_url: str, uv: bool) -> list[Row]:
    python = sys.executable
    found = [
        Row("anchor: import sqlalchemy + SELECT 1", [python, "-c", ANCHOR, database_url]),
        Row("python -c 'import sqlalchemy'", [python, "-c", "import sqlalchemy"]),
        # Issue 25's anchor: the package itself (its __init__ only; the CLI imports more).
        Row("python -c 'import app'", [python, "-c", "import app"]),
        Row("set-role", [SENTINEL, "set-role", EMAIL, "operator"]),
        Row("unlock", [SENTINEL, "unlock", EMAIL]),
        Row(
            "create-admin --reset-password",
            [
                SENTINEL,
                "create-admin",
                "--email",
                EMAIL,
                "--password",
                PASSWORD,
                "--reset-password",
            ],
        ),
        Row("retention --dry-run", [SENTINEL, "retention", "--dry-run"]),
        Row("knowledge check", [SENTINEL, "knowledge", "check"]),
    ]
    if uv and shutil.which("uv"):
        set_role = next(row for row in found if row.name == "set-role")
        found.append(Row("uv run sentinel set-role", ["uv", "run", "sentinel", *set_role.argv[1:]]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (default 7)")
    parser.add_argument(
        "--database-url", default=None, help="default: a SQLite file in a temporary folder"
    )
    parser.add_argument("--redis-url", default="", help="default: none (in-process fallbacks)")
    parser.add_argument(
        "--limit", type=float, default=3.0, help="exit 1 above this median wall time (s)"
    )
    parser.add_argument("--no-uv", action="store_true", help="skip the `uv run` row")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sentinel-bench-cli-") as tmp:
        work = Path(tmp)
        url = args.database_url or f"sqlite+aiosqlite:///{work / 'bench.db'}"
        created = url.startswith("postgresql") and asyncio.run(_postgres(url, create=True))
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_URL", "DB_", "REDIS_", "CHROMA_", "LOG_"))
        }
        env = {
            **base,
            "DATABASE_URL": url,
            "REDIS_URL": args.redis_url,
            "REDIS_KEY_PREFIX": f"sentinel-bench-cli-{os.getpid()}:",
            "CHROMA_PATH": str(work / "chroma"),
            "EVENT_LOG_PATH": str(work / "events.jsonl"),
        }
        try:
            return bench(args, url, env, work)
        finally:
            if created:
                asyncio.run(_postgres(url, create=False))


def bench(args: argparse.Namespace, url: str, env: dict[str, str], work: Path) -> int:
    setup = [SENTINEL, "create-admin", "--email", EMAIL, "--password", PASSWORD, "--migrate"]
    started = time.perf_counter()
    done = subprocess.run(setup, env=env, cwd=work, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"setup failed:\n{done.stderr}")
    setup_secs = time.perf_counter() - started

    table = rows(url, uv=not args.no_uv)
    load_before = os.getloadavg()
    for _ in range(args.runs):
        for row in table:
            wall, cpu = timed(row.argv, env, work)
            row.wall.append(wall)
            row.cpu.append(cpu)
    load_after = os.getloadavg()

    dialect = make_url(url).get_backend_name() + (" + Redis" if args.redis_url else "")
    bytecode = "set (every run compiles)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "unset"
    print(
        f"{dialect}; {args.runs} runs each; PYTHONDONTWRITEBYTECODE {bytecode}; "
        f"{os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    print(f"setup (create-admin --migrate on an empty database): {setup_secs:.2f} s")
    anchor_wall = statistics.median(table[0].wall)
    anchor_cpu = statistics.median(table[0].cpu)
    print(
        f"{'command':<38}{'wall (median)':>14}{'x anchor':>10}{'CPU (median)':>14}{'x anchor':>10}"
    )
    failed = False
    for row in table:
        wall, cpu = statistics.median(row.wall), statistics.median(row.cpu)
        over = row.argv[0] == SENTINEL and wall > args.limit
        failed |= over
        print(
            f"{row.name:<38}{wall:>12.2f} s{wall / anchor_wall:>10.1f}"
            f"{cpu:>12.2f} s{cpu / anchor_cpu:>10.1f}{'  over the limit' if over else ''}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
