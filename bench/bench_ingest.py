"""Sustained event ingest over HTTP against PostgreSQL + Redis, compared with a no-op endpoint.

One command:

    uv run python bench/bench_ingest.py [--seconds 8] [--concurrency 16] [--batch 50]

Starts `sentinel serve` on a free port with a fresh PostgreSQL database and a private Redis key
prefix, then drives it with an httpx client for each scenario:

- no-op: `POST /echo` with the same JSON body as a single event (the ceiling: HTTP, routing,
  JSON parsing and the middleware on this machine, in this run);
- single: `POST /api/v1/events`, each worker playing one camera (START, PROBS ×8, END);
- batch: `POST /api/v1/events/batch` with `--batch` PROBS events per request.

Prints req/s, events/s, p50 and p99 and the ratio of each to the no-op endpoint.
Environment: BENCH_DATABASE_URL (an admin URL; default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres),
BENCH_REDIS_URL (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
NORMAL = {"normal": 0.92, "fall": 0.05, "fight": 0.03}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def single_event(source: str, kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "source_id": source,
        "event_type": kind,
        "timestamp": now_iso(),
        "metadata": {"fps": 15},
    }
    if kind in ("PROBS", "END"):
        body["probs"] = NORMAL
    return body


class Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.events = 0


async def drive(
    client: httpx.AsyncClient, seconds: float, concurrency: int, make_request
) -> tuple[Recorder, float]:
    rec = Recorder()
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        step = 0
        while time.perf_counter() < stop_at:
            method, url, body, n_events = make_request(index, step)
            step += 1
            started = time.perf_counter()
            try:
                r = await client.request(method, url, json=body)
                ok = r.status_code < 300
            except httpx.HTTPError:
                ok = False
            elapsed = time.perf_counter() - started
            if ok:
                rec.latencies.append(elapsed)
                rec.events += n_events
            else:
                rec.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return rec, time.perf_counter() - started


def camera_cycle(prefix: str):
    """Each worker is one camera: START, PROBS ×8, END, repeated."""

    def make(index: int, step: int):
        phase = step % 10
        kind = "START" if phase == 0 else "END" if phase == 9 else "PROBS"
        return "POST", "/api/v1/events", single_event(f"{prefix}-{index}", kind), 1

    return make


def noop(index: int, step: int):
    return "POST", "/echo", single_event(f"noop-{index}", "PROBS"), 0


def batches(size: int):
    def make(index: int, step: int):
        events = [single_event(f"batch-{index}", "PROBS") for _ in range(size)]
        return "POST", "/api/v1/events/batch", {"events": events}, size

    return make


def make_scenario(spec: str, offset: int):
    """Rebuild a request maker from a picklable spec in a client process."""
    kind, _, arg = spec.partition(":")
    if kind == "noop":
        inner = noop
    elif kind == "single":
        inner = camera_cycle(arg)
    else:
        inner = batches(int(arg))
    return lambda index, step: inner(index + offset, step)


def client_process(base: str, spec: str, seconds: float, concurrency: int, offset: int):
    """One load-generating process: returns (latencies, events, errors, elapsed)."""

    async def run():
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            rec, elapsed = await drive(client, seconds, concurrency, make_scenario(spec, offset))
        return rec.latencies, rec.events, rec.errors, elapsed

    return asyncio.run(run())


async def drive_processes(
    pool: ProcessPoolExecutor, base: str, spec: str, seconds: float, concurrency: int, clients: int
) -> tuple[Recorder, float]:
    loop = asyncio.get_running_loop()
    per = max(1, concurrency // clients)
    parts = await asyncio.gather(
        *(
            loop.run_in_executor(pool, client_process, base, spec, seconds, per, i * per)
            for i in range(clients)
        )
    )
    rec = Recorder()
    for latencies, events, errors, _ in parts:
        rec.latencies += latencies
        rec.events += events
        rec.errors += errors
    return rec, max(part[3] for part in parts)


def server_cpu_secs(pid: int) -> float:
    """utime + stime of the server process and its children (Linux /proc), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--clients", type=int, default=2, help="load-generating processes (share --concurrency)"
    )
    args = parser.parse_args()

    admin_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    run_id = uuid.uuid4().hex[:8]
    db_name = f"sentinel_bench_{run_id}"
    admin = create_async_engine(
        make_url(admin_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    db_url = make_url(admin_url).set(database=db_name).render_as_string(hide_password=False)

    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"sentinel-bench-{run_id}:",
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "WARNING",
        "LOG_ACCESS": "false",
        "EVENT_LOG_PATH": str(tmp / "events.jsonl"),
        "RATE_LIMIT_ENABLED": "false",
        "JWT_SECRET": "bench-" + run_id * 6,
        "ACCESS_TOKEN": "bench-" + run_id * 6,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    err = server.stderr.read().decode() if server.stderr else ""
                    raise SystemExit(f"server did not start:\n{err[-2000:]}")
                await asyncio.sleep(0.2)
            # Warm-up: connections, the first episode rows, JIT-free but cache-warm.
            await drive(client, 1.0, args.concurrency, camera_cycle("warm"))
            await drive(client, 1.0, args.concurrency, noop)

            scenarios = [
                ("no-op POST /echo", "noop"),
                ("single POST /api/v1/events", f"single:cam-{run_id}"),
                (f"batch POST /api/v1/events/batch ×{args.batch}", f"batch:{args.batch}"),
            ]
            pool = ProcessPoolExecutor(args.clients)
            for name, spec in scenarios:
                cpu_before = server_cpu_secs(server.pid)
                rec, elapsed = await drive_processes(
                    pool, base, spec, args.seconds, args.concurrency, args.clients
                )
                cpu = server_cpu_secs(server.pid) - cpu_before
                rows.append(
                    {
                        "name": name,
                        "rps": len(rec.latencies) / elapsed,
                        "eps": rec.events / elapsed,
                        "p50": pct(rec.latencies, 0.5),
                        "p99": pct(rec.latencies, 0.99),
                        "errors": rec.errors,
                        "cpu_ms": cpu * 1000 / max(len(rec.latencies), 1),
                        "median": statistics.median(rec.latencies) * 1000 if rec.latencies else 0,
                    }
                )
            pool.shutdown()
            stored = (await client.get("/api/v1/events", params={"limit": 1})).status_code
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        await admin.dispose()
        try:
            from redis import asyncio as aioredis

            r = aioredis.from_url(redis_url)
            keys = [k async for k in r.scan_iter(match=f"sentinel-bench-{run_id}:*")]
            if keys:
                await r.delete(*keys)
            await r.aclose()
        except Exception:
            pass

    ceiling = rows[0]["rps"]
    print(
        f"\nEvent ingest over HTTP, PostgreSQL + Redis, concurrency {args.concurrency}, "
        f"{args.seconds:.0f} s per scenario, {args.workers} server worker(s), "
        f"{args.clients} client processes, {os.cpu_count()} CPUs "
        "(clients, server, PostgreSQL and Redis on the same machine)\n"
    )
    header = (
        f"{'scenario':<40} {'req/s':>9} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'server CPU ms/req':>18} {'req/s vs no-op':>15}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['name']:<40} {row['rps']:>9.0f} {row['eps']:>10.0f} {row['p50']:>8.1f} "
            f"{row['p99']:>8.1f} {row['errors']:>7} {row['cpu_ms']:>18.2f} {row['rps'] / ceiling:>14.0%}"
        )
    single = rows[1]
    goal = single["rps"] / ceiling
    print(
        f"\nsingle-event ingest = {goal:.0%} of the no-op endpoint's req/s "
        f"(goal >= 50 %: {'met' if goal >= 0.5 else 'NOT met'}); "
        f"batch ingest = {rows[2]['eps'] / max(single['eps'], 1):.1f}x the single path in events/s"
    )
    return 0 if stored == 200 else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
