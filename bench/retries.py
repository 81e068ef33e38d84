"""Ingest when agents retry: repeated event ids against a bare upsert anchor, driven by wrk.

One command (needs PostgreSQL, Redis and `wrk`: `apt-get install -y wrk`):

    uv run python bench/retries.py [--seconds 8] [--repeat 3] [--connections 32] [--pool 4000]

Starts the bare anchor (`bench/anchor_app.py`) and Sentinel (`app.main:app_factory`, PostgreSQL
+ Redis, development mode, production-like logging) as `bench/hotpath.py` does, opens an
episode on each of 8 sources, and stores a pool of PROBS events (`--pool`, posted through
`/events/batch` on Sentinel and `/event/upsert-batch` on the anchor) whose ids are then
repeated. Each scenario is one wrk script: PROBS events for the 8 sources where a share of the
ids (0 %, 30 %, 100 %) are drawn from the pool, the rest new; single events
(`POST /api/v1/events` vs the anchor's `INSERT … ON CONFLICT DO NOTHING RETURNING id`) and
batches of 10 (`POST /api/v1/events/batch` vs one multi-row upsert). Medians of `--repeat`
runs; each scenario is compared with the anchor in the same run and with its own all-new row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hotpath import (  # noqa: E402
    _DONE_LUA,
    _UUID_LUA,
    Run,
    create_database,
    drop_database,
    start_server,
    stop_server,
    wrk,
)

SOURCES = 8
SEED_PREFIX = "5eed0000-0000-4000-8000-"  # the pool's ids: SEED_PREFIX + 12 hex digits
PROBS = '"probs":{"walking":0.9,"running":0.1}'
STAMP = "2026-12-06T00:00:00Z"


def _lua(path: str, share: float, pool: int, batch: int) -> str:
    """PROBS events, `share` of them repeating an id from the pool; `batch` per request."""
    one = (
        '\'{"event_id":"%s","source_id":"cam-%d","event_type":"PROBS","timestamp":"'
        + STAMP
        + '",'
        + PROBS
        + "}'"
    )
    return (
        _UUID_LUA
        + f"""
local n = 0
local function event()
  n = n + 1
  if math.random() < {share} then
    local k = math.random(1, {pool})
    return string.format({one}, "{SEED_PREFIX}" .. string.format("%012x", k), k % {SOURCES})
  end
  return string.format({one}, next_id(), n % {SOURCES})
end
request = function()
  local body
  if {batch} == 1 then
    body = event()
  else
    local parts = {{}}
    for i = 1, {batch} do parts[i] = event() end
    body = '{{"events":[' .. table.concat(parts, ",") .. ']}}'
  end
  return wrk.format("POST", "{path}", {{["Content-Type"] = "application/json"}}, body)
end
"""
        + _DONE_LUA
    )


def seed(url: str, path: str, pool: int) -> None:
    """Open an episode per source (Sentinel), then store the pool in batches of 100."""
    with httpx.Client(base_url=url, timeout=60) as client:
        if path.startswith("/api/"):
            for i in range(SOURCES):
                start = {"source_id": f"cam-{i}", "event_type": "START", "timestamp": STAMP}
                client.post("/api/v1/events", json=start).raise_for_status()
        for first in range(1, pool + 1, 100):
            events = [
                {
                    "event_id": f"{SEED_PREFIX}{k:012x}",
                    "source_id": f"cam-{k % SOURCES}",
                    "event_type": "PROBS",
                    "timestamp": STAMP,
                    "probs": {"walking": 0.9, "running": 0.1},
                }
                for k in range(first, min(first + 100, pool + 1))
            ]
            client.post(path, json={"events": events}).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pool", type=int, default=4000, help="stored events repeats draw from")
    parser.add_argument("--no-pin", action="store_true", help="do not taskset server/wrk")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another Sentinel checkout (`git archive REV | tar -x -C DIR`) measured in the same "
        "run, as 'before'",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    server_cpu, wrk_cpu = ("0", "1") if pin else (None, None)
    admin = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = admin.replace("postgresql+asyncpg://", "postgresql://")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    tag = uuid.uuid4().hex[:8]
    base = admin.rsplit("/", 1)[0]
    tmp = Path(tempfile.mkdtemp(prefix="retries-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    targets = {"sentinel": ROOT}
    if args.baseline:
        targets = {"before": args.baseline.resolve(), **targets}
    databases = {who: f"bench_retries_{tag}_{who}" for who in targets}
    prefix = f"bench-retries-{tag}-"

    def sentinel_env(who: str) -> dict[str, str]:
        return {
            **env,
            "ENVIRONMENT": "development",
            "DATABASE_URL": f"{base}/{databases[who]}".replace(
                "postgresql://", "postgresql+asyncpg://", 1
            ),
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": f"{prefix}{who}:",
            "RATE_LIMIT_ENABLED": "false",
            "LOG_LEVEL": "INFO",
            "EVENT_LOG_PATH": str(tmp / f"events-{who}.jsonl"),
            "CHROMA_PATH": str(tmp / f"chroma-{who}"),
            "DB_MIGRATE_ON_START": "true",
        }

    anchor_env = {
        **env,
        "ANCHOR_DATABASE_URL": f"{base}/{databases['sentinel']}",
        "PYTHONPATH": str(ROOT),
    }
    scenarios = [
        (f"{kind} {share:.0%} repeated", share, batch)
        for kind, batch in (("single", 1), ("batch of 10", 10))
        for share in (0.0, 0.3, 1.0)
    ]
    sentinel_paths = ("/api/v1/events", "/api/v1/events/batch")
    paths = {"anchor": ("/event/upsert", "/event/upsert-batch")}
    for who in targets:
        paths[who] = sentinel_paths
        asyncio.run(create_database(admin, databases[who]))
    servers: dict[str, tuple] = {}
    results: dict[str, dict[str, list[Run]]] = {
        name: {who: [] for who in paths} for name, *_ in scenarios
    }
    try:
        servers["anchor"] = start_server(
            "bench.anchor_app:app", False, anchor_env, server_cpu, tmp / "anchor.log"
        )
        for who, root in targets.items():
            servers[who] = start_server(
                "app.main:app_factory",
                True,
                sentinel_env(who),
                server_cpu,
                tmp / f"{who}.log",
                cwd=root,
            )
        for who, (_, url) in servers.items():
            seed(url, paths[who][1], args.pool)
        print(f"pool of {args.pool} stored events; pinning {'on' if pin else 'off'}")
        for rep in range(args.repeat):
            for name, share, batch in scenarios:
                for who, (_, url) in servers.items():
                    script = _lua(paths[who][batch > 1], share, args.pool, batch)
                    if rep == 0 and args.warmup > 0:
                        wrk(url, script, args.warmup, args.connections, wrk_cpu, tmp)
                    run = wrk(url, script, args.seconds, args.connections, wrk_cpu, tmp)
                    results[name][who].append(run)
                    print(
                        f"  [{rep + 1}/{args.repeat}] {name:26} {who:8} {run.rps:8.0f} req/s "
                        f"p50 {run.p50_ms:7.1f} ms p99 {run.p99_ms:7.1f} ms errors {run.errors}",
                        flush=True,
                    )
        fallbacks = {
            who: (tmp / f"{who}.log").read_text(errors="replace").count("one by one")
            for who in targets
        }
    finally:
        for proc, _ in servers.values():
            stop_server(proc)
        client = redis.Redis.from_url(redis_url)
        keys = client.keys(prefix + "*")
        if keys:
            client.delete(*keys)
        for name in databases.values():
            asyncio.run(drop_database(admin, name))

    def med(runs: list[Run], attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs)

    print(
        f"\nmedians of {args.repeat} runs, {args.seconds:g} s each, wrk -t1 -c{args.connections}, "
        f"PROBS for {SOURCES} sources, {datetime.now(UTC):%Y-%m-%d}"
    )
    head = "| scenario | anchor req/s | p99 ms |"
    for who in targets:
        head += f" {who} req/s | p50 ms | p99 ms | vs anchor | vs own all-new: req/s | p99 |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    errors = 0
    for name, _share, batch in scenarios:
        a = results[name]["anchor"]
        line = f"| {name} | {med(a, 'rps'):,.0f} | {med(a, 'p99_ms'):.1f} |"
        base_name = next(n for n, sh, b in scenarios if b == batch and sh == 0.0)
        errors += sum(r.errors for r in a)
        for who in targets:
            s_, own = results[name][who], results[base_name][who]
            errors += sum(r.errors for r in s_)
            line += (
                f" {med(s_, 'rps'):,.0f} | {med(s_, 'p50_ms'):.1f} | {med(s_, 'p99_ms'):.1f} "
                f"| {med(s_, 'rps') / med(a, 'rps'):.0%} | {med(s_, 'rps') / med(own, 'rps'):.0%} "
                f"| {med(s_, 'p99_ms') / med(own, 'p99_ms'):.1f}× |"
            )
        print(line)
    print(f"\ngroups written one by one (log lines): {fallbacks}")
    if errors:
        print(f"WARNING: {errors} failed or non-2xx responses; see {tmp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
