"""A year of events on PostgreSQL: 20 million rows in daily partitions, read and expired.

    uv run python bench/events_at_scale.py                        # 20 M events, ~25 minutes
    uv run python bench/events_at_scale.py --events 2000000       # a quick look
    uv run python bench/events_at_scale.py --reuse                # skip loading (keep --keep'd data)

1. A fresh database (`--database`, default `sentinel_scale`) migrated to head; the daily
   partitions of the last `--days` days made by the app's own `EventPartitionService.ensure`.
2. `--events` events over `--days` days for `--sources` sources loaded with `COPY`: each source's
   day is cut into episodes of `--episode-len` events (START, PROBS…, END, with probabilities),
   their episodes rows too, and the last week's ids into `event_ids`, as ingest leaves them.
   Foreign-key triggers are off during the load (`session_replication_role = replica`, as
   pg_restore does); `ANALYZE` afterwards.
3. A real `sentinel serve` on that database (no Redis, so recent events come from PostgreSQL)
   answers, `--queries` times each after `--warmup` unmeasured ones, closed loop, one at a
   time, random sources and days:
     recent      GET /api/v1/events/recent?source_id=…&limit=50
     day         GET /api/v1/events?source_id=…&since=<day>&until=<day+1>&limit=50
     episodes    GET /api/v1/episodes?limit=50
     src-episodes GET /api/v1/episodes?source_id=…&limit=50
   Anchor: the same SQL through a bare asyncpg connection (no HTTP, no ORM), in the same run.
4. Retention of a month: the window set so the oldest 30 days expire, timed in process
   (`RetentionService.run`). Anchor: the previous, row-wise way (batches of 1,000 ids, one
   transaction each) on a plain table holding a copy of the same month's rows, for at most
   `--anchor-secs` seconds and extrapolated.
Prints p50/p99 in ms, the table sizes and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.database import Database, run_migrations  # noqa: E402
from app.core.lock import LockService  # noqa: E402
from app.core.redis import RedisManager  # noqa: E402
from app.core.settings import (  # noqa: E402
    DatabaseSettings,
    EventSettings,
    RedisSettings,
    RetentionSettings,
)
from app.services.event_log import EventLog  # noqa: E402
from app.services.event_partitions import EventPartitionService  # noqa: E402
from app.services.retention import RetentionKind, RetentionService  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
EPISODE_COLUMNS = [
    "id", "source_id", "status", "started_at", "ended_at", "close_reason", "event_count",
    "probs_count", "probs_sum", "probs_max", "out_of_order", "decision", "decided_by",
    "anomaly_score", "threshold", "top_label", "created_at", "updated_at",
]  # fmt: skip
EVENT_COLUMNS = [
    "id", "source_id", "event_type", "occurred_at", "received_at", "probs", "episode_id",
]  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ts(day: str, secs: float) -> str:
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return f"{day} {int(h):02d}:{int(m):02d}:{s:06.3f}+00"


def day_rows(day: datetime, sources: int, per_source: int, episode_len: int) -> tuple[str, str]:
    """One day's episodes and events as CSV text."""
    d = f"{day:%Y-%m-%d}"
    step = 86_400.0 / per_source
    episodes: list[str] = []
    events: list[str] = []
    hexes = os.urandom(16 * (sources * per_source + sources * (per_source // episode_len + 1)))
    text = hexes.hex()
    ids = iter([text[i : i + 32] for i in range(0, len(text), 32)])
    for s in range(sources):
        source = f"cam-{s:03d}"
        offset = s * step / sources
        for first in range(0, per_source, episode_len):
            n = min(episode_len, per_source - first)
            episode = next(ids)
            start = ts(d, offset + first * step)
            end = ts(d, offset + (first + n - 1) * step)
            abnormal = random.random() < 0.02
            decision = "abnormal" if abnormal else "normal"
            episodes.append(
                f"{episode},{source},closed,{start},{end},end,{n},{max(n - 1, 0)},"
                f'"{{""normal"": {n - 1}}}","{{""normal"": 1.0}}",0,{decision},probs,'
                f"{0.9 if abnormal else 0.1},0.5,{'fall' if abnormal else 'normal'},{end},{end}"
            )
            for j in range(n):
                secs = offset + (first + j) * step
                kind = "START" if j == 0 else "END" if j == n - 1 else "PROBS"
                probs = '"{""normal"": 0.93, ""fall"": 0.07}"' if kind != "START" else ""
                events.append(
                    f"{next(ids)},{source},{kind},{ts(d, secs)},{ts(d, secs + 0.05)},"
                    f"{probs},{episode}"
                )
    return "\n".join(episodes) + "\n", "\n".join(events) + "\n"


async def load(args: argparse.Namespace, dsn: str, now: datetime) -> dict[str, float]:
    per_source = max(args.episode_len, args.events // (args.days * args.sources))
    conn = await asyncpg.connect(dsn)
    await conn.execute("SET session_replication_role = replica")
    first_day = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=args.days)
    started = time.perf_counter()
    rows = 0
    for i in range(args.days):
        day = first_day + timedelta(days=i)
        episodes, events = day_rows(day, args.sources, per_source, args.episode_len)
        await conn.copy_to_table(
            "episodes", source=io.BytesIO(episodes.encode()), columns=EPISODE_COLUMNS, format="csv"
        )
        await conn.copy_to_table(
            "events", source=io.BytesIO(events.encode()), columns=EVENT_COLUMNS, format="csv"
        )
        rows += events.count("\n")
        if i % 30 == 0:
            rate = rows / (time.perf_counter() - started)
            print(f"  day {i + 1}/{args.days}: {rows:,} events, {rate:,.0f} rows/s", flush=True)
    await conn.execute(
        "INSERT INTO event_ids SELECT id, received_at, episode_id FROM events "
        "WHERE received_at >= now() - interval '7 days'"
    )
    seconds = time.perf_counter() - started
    await conn.execute("ANALYZE")
    await conn.close()
    return {"rows": rows, "seconds": seconds}


async def sizes(dsn: str) -> dict[str, tuple[int, int]]:
    """Table → (rows, bytes with indexes); events summed over its partitions."""
    conn = await asyncpg.connect(dsn)
    out: dict[str, tuple[int, int]] = {}
    row = await conn.fetchrow(
        "SELECT count(*) AS parts, sum(pg_total_relation_size(inhrelid)) AS bytes, "
        "sum(c.reltuples) AS rows FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid "
        "WHERE inhparent = 'events'::regclass"
    )
    out[f"events ({row['parts']} partitions)"] = (int(row["rows"]), int(row["bytes"]))
    for table in ("episodes", "event_ids"):
        r = await conn.fetchrow(
            "SELECT reltuples AS rows, pg_total_relation_size(oid) AS bytes FROM pg_class "
            "WHERE relname = $1",
            table,
        )
        out[table] = (int(r["rows"]), int(r["bytes"]))
    await conn.close()
    return out


def queries(args: argparse.Namespace, now: datetime) -> list[tuple[str, str, dict[str, str]]]:
    """(name, path, params) for each read, random sources and days."""
    rng = random.Random(7)
    out = []
    for _ in range(args.warmup + args.queries):
        source = f"cam-{rng.randrange(args.sources):03d}"
        day = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(
            days=rng.randrange(1, max(2, args.days - 31))
        )
        out += [
            ("recent", "/api/v1/events/recent", {"source_id": source, "limit": "50"}),
            (
                "day",
                "/api/v1/events",
                {
                    "source_id": source,
                    "since": day.isoformat(),
                    "until": (day + timedelta(days=1)).isoformat(),
                    "limit": "50",
                },
            ),
            ("episodes", "/api/v1/episodes", {"limit": "50"}),
            ("src-episodes", "/api/v1/episodes", {"source_id": source, "limit": "50"}),
        ]
    return out


ANCHOR_SQL = {
    # What each route runs, as plain SQL (the columns the API returns, sequence left out).
    "recent": "SELECT id, source_id, event_type, occurred_at, received_at, probs, metadata, "
    "episode_id FROM events WHERE source_id = $1 ORDER BY received_at DESC, id DESC LIMIT 50",
    "day": "SELECT id, source_id, event_type, occurred_at, received_at, probs, metadata, "
    "episode_id FROM events WHERE source_id = $1 AND occurred_at >= $2 AND occurred_at < $3 "
    "ORDER BY occurred_at DESC, id DESC LIMIT 51",
    "episodes": "SELECT * FROM episodes ORDER BY started_at DESC, id DESC LIMIT 51",
    "src-episodes": "SELECT * FROM episodes WHERE source_id = $1 "
    "ORDER BY started_at DESC, id DESC LIMIT 51",
}


def anchor_args(name: str, params: dict[str, str]) -> list[object]:
    if name == "day":
        return [
            params["source_id"],
            datetime.fromisoformat(params["since"]),
            datetime.fromisoformat(params["until"]),
        ]
    return [params["source_id"]] if name in ("recent", "src-episodes") else []


async def reads(args: argparse.Namespace, dsn: str, url: str, now: datetime) -> None:
    plan = queries(args, now)
    app: dict[str, list[float]] = {}
    bare: dict[str, list[float]] = {}
    server = LiveServer(
        {
            "DATABASE_URL": url,
            "REDIS_URL": "",
            "LOG_LEVEL": "WARNING",
            "DB_MIGRATE_ON_START": "false",
            "RETENTION_ENABLED": "false",
            "RATE_LIMIT_ENABLED": "false",
        }
    ).start(timeout=600)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            # Warm every pooled connection (each plans a statement anew until PostgreSQL caches
            # its plan) and the caches.
            for _name, path, params in plan[: 4 * args.warmup]:
                (await client.get(path, params=params)).raise_for_status()
            for name, path, params in plan[4 * args.warmup :]:
                t = time.perf_counter()
                response = await client.get(path, params=params)
                app.setdefault(name, []).append((time.perf_counter() - t) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{path} {params}: {response.status_code} {response.text}")
    finally:
        server.stop()
    conn = await asyncpg.connect(dsn)
    for name, _, params in plan[: 4 * args.warmup]:
        await conn.fetch(ANCHOR_SQL[name], *anchor_args(name, params))
    for name, _, params in plan[4 * args.warmup :]:
        t = time.perf_counter()
        await conn.fetch(ANCHOR_SQL[name], *anchor_args(name, params))
        bare.setdefault(name, []).append((time.perf_counter() - t) * 1000)
    await conn.close()
    print(f"\nreads, {args.queries} each, one at a time (ms):")
    print(f"{'read':14} {'app p50':>8} {'app p99':>8} {'bare p50':>9} {'bare p99':>9}")
    for name in ANCHOR_SQL:
        a, b = app[name], bare[name]
        print(
            f"{name:14} {statistics.median(a):8.1f} {pct(a, 0.99):8.1f} "
            f"{statistics.median(b):9.1f} {pct(b, 0.99):9.1f}"
        )


async def retention(args: argparse.Namespace, dsn: str, url: str, tmp: Path) -> None:
    now = datetime.now(UTC)
    days = args.days - 30
    cutoff = now - timedelta(days=days)
    conn = await asyncpg.connect(dsn)
    # The anchor's copy of the month, made before the month goes.
    await conn.execute("DROP TABLE IF EXISTS month_plain")
    await conn.execute("CREATE TABLE month_plain (LIKE events INCLUDING DEFAULTS)")
    await conn.execute(
        "INSERT INTO month_plain SELECT * FROM events WHERE received_at < $1", cutoff
    )
    await conn.execute("ALTER TABLE month_plain ADD PRIMARY KEY (id)")
    for columns in ("episode_id", "occurred_at, id", "received_at", "source_id, occurred_at"):
        await conn.execute(f"CREATE INDEX ON month_plain ({columns})")
    await conn.execute("ANALYZE month_plain")
    month_rows = await conn.fetchval("SELECT count(*) FROM month_plain")

    db = Database(DatabaseSettings(url=url))
    service = RetentionService(
        db,
        RetentionSettings(
            events_days=days,
            heartbeats_days=0,
            episodes_days=0,
            conversations_days=0,
            llm_usage_days=0,
        ),
        LockService(RedisManager(RedisSettings(url=""))),
        EventLog(EventSettings(log_path=str(tmp / "events.jsonl"))),
        partitions=EventPartitionService(db),
    )
    parts = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
    before = await conn.fetchval(parts)
    t = time.perf_counter()
    report = await service.run(dry_run=False)
    took = time.perf_counter() - t
    await db.engine.dispose()
    dropped = before - await conn.fetchval(parts)

    deleted = 0
    t = time.perf_counter()
    while time.perf_counter() - t < args.anchor_secs:
        async with conn.transaction():
            ids = await conn.fetch(
                "SELECT id FROM month_plain WHERE received_at < $1 AND event_type <> 'HEARTBEAT' "
                "ORDER BY received_at LIMIT 1000",
                cutoff,
            )
            if not ids:
                break
            await conn.execute(
                "DELETE FROM month_plain WHERE id = ANY($1::uuid[])", [r["id"] for r in ids]
            )
            deleted += len(ids)
    anchor = time.perf_counter() - t
    await conn.execute("DROP TABLE month_plain")
    await conn.close()
    rate = deleted / anchor if anchor else 0.0
    print(f"\nretention of a month ({month_rows:,} events older than {cutoff:%Y-%m-%d}):")
    print(
        f"  retention run: {took:.2f} s, {report.count(RetentionKind.events):,} events, "
        f"{dropped} partitions dropped"
    )
    print(
        f"  row-wise anchor: {deleted:,} rows in {anchor:.1f} s = {rate:,.0f} rows/s "
        f"→ the month in ~{month_rows / rate if rate else float('nan'):.0f} s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--episode-len", type=int, default=20)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--anchor-secs", type=float, default=60.0)
    parser.add_argument("--warmup", type=int, default=100, help="requests of each read first")
    parser.add_argument("--database", default="sentinel_scale")
    parser.add_argument("--reuse", action="store_true", help="skip creating and loading")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--no-retention", action="store_true")
    args = parser.parse_args()
    dsn = f"{PG}/{args.database}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{args.database}"
    now = datetime.now(UTC)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    if not args.reuse:
        admin = await asyncpg.connect(f"{PG}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{args.database}"')
        await admin.close()
        await asyncio.to_thread(run_migrations, url)
        db = Database(DatabaseSettings(url=url))
        made = await EventPartitionService(db).ensure(
            now, first=(now - timedelta(args.days)).date()
        )
        await db.engine.dispose()
        print(f"{len(made)} daily partitions made; loading {args.events:,} events…")
        loaded = await load(args, dsn, now)
        print(
            f"loaded {loaded['rows']:,.0f} events in {loaded['seconds']:.0f} s "
            f"({loaded['rows'] / loaded['seconds']:,.0f} rows/s, with episodes and indexes)"
        )
    print("\ntable sizes:")
    for table, (rows, size) in (await sizes(dsn)).items():
        print(f"  {table:28} {rows:>12,} rows {size / 2**30:8.2f} GiB")
    await reads(args, dsn, url, now)
    if not args.no_retention:
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"scale-{uuid.uuid4().hex[:6]}"
        tmp.mkdir(parents=True, exist_ok=True)
        await retention(args, dsn, url, tmp)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    if not args.keep:
        admin = await asyncpg.connect(f"{PG}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
