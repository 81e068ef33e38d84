"""Sentinel's hot paths against bare FastAPI anchors, side by side, driven by wrk.

One command (needs PostgreSQL, Redis and `wrk`: `apt-get install -y wrk`):

    uv run python bench/hotpath.py [--seconds 8] [--repeat 3] [--connections 32] [--no-pin]

Starts two servers under identical uvicorn settings (same venv, one worker, uvloop/httptools
as uvicorn picks them, no uvicorn access log):

- the anchor, `bench/anchor_app.py`: a bare FastAPI app doing only the work itself;
- Sentinel (`app.main:app_factory`) on a fresh PostgreSQL database and a private Redis key
  prefix, rate limits off, production-like logging (INFO, one access line per request, to a
  file) and the JSONL event log on.

Each pair below is driven with wrk (`-t1 -c<connections>`), anchor and Sentinel back to back,
`--repeat` times; the table shows medians (req/s, p50, p99) and Sentinel / anchor ratios.

| Sentinel                                  | anchor                                   |
|-------------------------------------------|------------------------------------------|
| GET /health/live                          | GET /live (a small dict)                 |
| POST /api/v1/events HEARTBEAT, unique ids | POST /event/insert (parse + asyncpg INSERT, committed) |
| POST /api/v1/events PROBS (open episodes) | POST /event/insert                       |
| POST /api/v1/behavior/analyze, one 100×6 sequence | POST /analyze/model: the same checkpoint's forward with the app's `InferenceBatcher` (same batch size, wait and TORCH_NUM_THREADS); extra column: POST /analyze (parse only) |

The anchor loads the behaviour model (`ANCHOR_MODEL=1`) only when `analyze` is measured.
With `--pin` (default), each server runs on CPU 0 and wrk on CPU 1 (`taskset`), so the load
generator does not steal the server's core; PostgreSQL and Redis float.
Environment: BENCH_DATABASE_URL (admin URL, default postgresql://postgres@127.0.0.1:5432/postgres),
BENCH_REDIS_URL (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
SOURCES = 32

_SERVE = """
import sys, uvicorn
target, factory, port = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
uvicorn.run(target, factory=factory, host="127.0.0.1", port=port, workers=None,
            log_config=None, access_log=False, proxy_headers=False, log_level="warning",
            timeout_graceful_shutdown=5)
"""

_UUID_LUA = """
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local prefix = string.format("%08x-%04x-4%03x-%04x-", math.random(0, 0x7fffffff),
  math.random(0, 0xffff), math.random(0, 0xfff), 0x8000 + math.random(0, 0x3fff))
local counter = 0
local function next_id()
  counter = counter + 1
  return prefix .. string.format("%012x", counter)
end
"""

_DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"non2xx":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def _event_lua(path: str, kind: str) -> str:
    probs = ',"probs":{"normal":0.92,"fall":0.05,"fight":0.03}' if kind == "PROBS" else ""
    return (
        _UUID_LUA
        + f"""
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{{"event_id":"%s","source_id":"cam-%d","event_type":"{kind}","timestamp":"%s"{probs},"metadata":{{"fps":15}}}}',
    next_id(), n % {SOURCES}, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  return wrk.format("POST", "{path}", {{["Content-Type"] = "application/json"}}, body)
end
"""
        + _DONE_LUA
    )


def _static_lua(method: str, path: str, body: str | None = None) -> str:
    if body is None:
        req = f'local req = wrk.format("{method}", "{path}")'
    else:
        req = (
            f'local req = wrk.format("{method}", "{path}", '
            f'{{["Content-Type"] = "application/json"}}, [==[{body}]==])'
        )
    return req + "\nrequest = function() return req end\n" + _DONE_LUA


def analyze_body() -> str:
    rng = random.Random(7)
    frames = [[round(rng.gauss(0, 1), 4) for _ in range(6)] for _ in range(100)]
    return json.dumps({"sequence": frames, "source_id": "cam-bench"}, separators=(",", ":"))


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    # The server's CPU time (all its threads) per request: steadier than req/s on a busy box.
    cpu_ms: float = math.nan


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    target: str, factory: bool, env: dict[str, str], cpu: str | None, log: Path, cwd: Path = ROOT
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-c", _SERVE, target, "1" if factory else "0", str(port)]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    handle = log.open("ab")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=handle, stderr=handle)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    probe = "/health/live" if factory else "/live"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{target} exited during start; see {log}")
        try:
            if httpx.get(url + probe, timeout=1).status_code == 200:
                wait_idle(proc.pid)
            return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"{target} did not start in 300 s; see {log}")


def wait_idle(pid: int, limit: float = 300.0) -> None:
    """Wait until the server stops burning CPU after start (the embedder loads in a thread).

    Three quiet seconds in a row: on a crowded machine a busy process may get only a few
    percent of a core per second, so one quiet second proves little.
    """

    def cpu() -> float:
        return process_cpu(pid)

    deadline = time.monotonic() + limit
    last, quiet = cpu(), 0
    while time.monotonic() < deadline and quiet < 3:
        time.sleep(1.0)
        now = cpu()
        quiet = quiet + 1 if now - last < 0.02 else 0
        last = now
    if quiet < 3:
        print(f"warning: server {pid} still busy after {limit:.0f} s; measuring anyway")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wrk(url: str, script: str, seconds: float, connections: int, cpu: str | None, tmp: Path) -> Run:
    path = tmp / f"s{uuid.uuid4().hex[:8]}.lua"
    path.write_text(script)
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(path),
    ]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    data = json.loads(line[len("WRKJSON ") :])
    seconds_run = data["duration_us"] / 1e6
    return Run(
        rps=data["requests"] / seconds_run,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"] + data["non2xx"],
        requests=data["requests"],
    )


def start_profile(pid: int, out: Path) -> subprocess.Popen:
    """py-spy sampling the server (collapsed stacks, one line per stack, for flame graphs)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "250"]
    return subprocess.Popen(
        [*cmd, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def open_episodes(url: str) -> None:
    """A START per source, so the PROBS run updates open episodes as in production."""
    now = datetime.now(UTC).isoformat()
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(SOURCES):
            body = {"source_id": f"cam-{i}", "event_type": "START", "timestamp": now}
            client.post("/api/v1/events", json=body).raise_for_status()


async def create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.0%}" if b else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-pin", action="store_true", help="do not taskset server/wrk")
    parser.add_argument(
        "--only", default="", help="comma list of scenarios: live,heartbeat,probs,analyze"
    )
    parser.add_argument("--json", type=Path, help="also write the medians here")
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="run Sentinel with LOG_ACCESS=false (to see what the access line costs)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another Sentinel checkout (e.g. `git archive <rev> | tar -x -C DIR`) served the "
        "same way and measured in the same run, for before/after columns",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record Sentinel with py-spy during each measured run into this folder "
        "(run as `uv run --with py-spy python bench/hotpath.py --profile DIR`)",
    )
    args = parser.parse_args()
    # A SIGTERM (e.g. from `timeout`) still stops the servers and drops the databases.
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
    tmp = Path(tempfile.mkdtemp(prefix="hotpath-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    targets = [("sentinel", ROOT)]
    if args.baseline:
        targets.insert(0, ("baseline", args.baseline.resolve()))
    databases = [f"bench_hotpath_{tag}_{who}" for who, _ in targets]
    prefixes = [f"bench-hotpath-{tag}-{who}:" for who, _ in targets]
    for name in databases:
        asyncio.run(create_database(admin, name))

    def sentinel_env(db_name: str, prefix: str, who: str) -> dict[str, str]:
        return {
            **env,
            "ENVIRONMENT": "development",
            "DATABASE_URL": f"{base}/{db_name}".replace(
                "postgresql://", "postgresql+asyncpg://", 1
            ),
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "RATE_LIMIT_ENABLED": "false",
            "LOG_LEVEL": "INFO",
            "LOG_ACCESS": "false" if args.no_access_log else "true",
            "EVENT_LOG_PATH": str(tmp / f"events-{who}.jsonl"),
            "CHROMA_PATH": str(tmp / f"chroma-{who}"),
            "DB_MIGRATE_ON_START": "true",
        }

    anchor_env = {**env, "ANCHOR_DATABASE_URL": f"{base}/{databases[-1]}", "PYTHONPATH": str(ROOT)}

    scenarios = [
        (
            "live",
            "GET /health/live",
            "bare GET",
            _static_lua("GET", "/health/live"),
            _static_lua("GET", "/live"),
            None,
        ),
        (
            "heartbeat",
            "POST /events HEARTBEAT",
            "parse+INSERT",
            _event_lua("/api/v1/events", "HEARTBEAT"),
            _event_lua("/event/insert", "HEARTBEAT"),
            None,
        ),
        (
            "probs",
            "POST /events PROBS",
            "parse+INSERT",
            _event_lua("/api/v1/events", "PROBS"),
            _event_lua("/event/insert", "PROBS"),
            None,
        ),
        (
            "analyze",
            "POST /api/v1/behavior/analyze 100x6",
            "bare model",
            _static_lua("POST", "/api/v1/behavior/analyze", analyze_body()),
            _static_lua("POST", "/analyze/model", analyze_body()),
            ("parse only", _static_lua("POST", "/analyze", analyze_body())),
        ),
    ]
    if args.only:
        wanted = set(args.only.split(","))
        scenarios = [s for s in scenarios if s[0] in wanted]
    if any(s[0] == "analyze" for s in scenarios):
        anchor_env["ANCHOR_MODEL"] = "1"  # the bare-model anchor: same checkpoint, same batcher

    print(f"pinning: server cpu {server_cpu}, wrk cpu {wrk_cpu}" if pin else "no pinning")
    print(f"load average before the run: {os.getloadavg()[0]:.2f} (other work skews figures)")
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    results: dict[str, dict[str, list[Run]]] = {}
    whos = ["anchor", *(who for who, _ in targets)]
    try:
        servers["anchor"] = start_server(
            "bench.anchor_app:app", False, anchor_env, server_cpu, tmp / "anchor.log"
        )
        for (who, root), db_name, prefix in zip(targets, databases, prefixes, strict=True):
            servers[who] = start_server(
                "app.main:app_factory",
                True,
                sentinel_env(db_name, prefix, who),
                server_cpu,
                tmp / f"{who}.log",
                cwd=root,
            )
            if any(s[0] == "probs" for s in scenarios):
                open_episodes(servers[who][1])
        for name, *_, extra in scenarios:
            results[name] = {who: [] for who in whos + (["extra"] if extra else [])}
        for rep in range(args.repeat):
            for name, _, _, s_script, a_script, extra in scenarios:
                for who in results[name]:
                    proc, url = servers["anchor" if who == "extra" else who]
                    scripts = {"anchor": a_script, "extra": extra[1] if extra else ""}
                    script = scripts.get(who, s_script)
                    if rep == 0 and args.warmup > 0:
                        wrk(url, script, args.warmup, args.connections, wrk_cpu, tmp)
                    spy = None
                    if args.profile and who == "sentinel":
                        spy = start_profile(proc.pid, args.profile / f"{name}-{rep + 1}.txt")
                    cpu_before = process_cpu(proc.pid)
                    run = wrk(url, script, args.seconds, args.connections, wrk_cpu, tmp)
                    run.cpu_ms = (process_cpu(proc.pid) - cpu_before) * 1000 / max(run.requests, 1)
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)
                        spy.wait(30)
                    results[name][who].append(run)
                    print(
                        f"  [{rep + 1}/{args.repeat}] {name:9} {who:8} {run.rps:8.0f} req/s "
                        f"p50 {run.p50_ms:7.1f} ms p99 {run.p99_ms:7.1f} ms "
                        f"CPU {run.cpu_ms:.3f} ms/req errors {run.errors}",
                        flush=True,
                    )
    finally:
        for proc, _ in servers.values():
            stop_server(proc)
        client = redis.Redis.from_url(redis_url)
        for prefix in prefixes:
            keys = client.keys(prefix + "*")
            if keys:
                client.delete(*keys)
        for db_name in databases:
            asyncio.run(drop_database(admin, db_name))

    def med(runs: list[Run], attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs)

    summary: dict[str, dict[str, Any]] = {}
    print(
        f"\nmedians of {args.repeat} runs, {args.seconds:g} s each, wrk -t1 -c{args.connections}"
        + (" (server on CPU 0, wrk on CPU 1)" if pin else "")
    )
    cols = [who for who in whos if who != "anchor"]
    head = "| path | anchor | anchor req/s | p50 ms | p99 ms |"
    for who in cols:
        head += f" {who} req/s | p50 ms | p99 ms | req/s vs anchor | p99 vs anchor |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    extras = []
    for name, label, anchor_label, *_, extra in scenarios:
        row: dict[str, Any] = {
            who: {k: med(runs, k) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms")}
            for who, runs in results[name].items()
        }
        row["errors"] = sum(r.errors for runs in results[name].values() for r in runs)
        if extra:
            extras.append((label, extra[0], row))
        summary[name] = row
        aa = row["anchor"]
        line = (
            f"| {label} | {anchor_label} | {aa['rps']:,.0f} | {aa['p50_ms']:.1f} "
            f"| {aa['p99_ms']:.1f} |"
        )
        for who in cols:
            ss = row[who]
            p99_ratio = ss["p99_ms"] / aa["p99_ms"] if aa["p99_ms"] else math.nan
            line += (
                f" {ss['rps']:,.0f} | {ss['p50_ms']:.1f} | {ss['p99_ms']:.1f} "
                f"| {fmt_ratio(ss['rps'], aa['rps'])} | {p99_ratio:.1f}× |"
            )
        print(line)
    for label, extra_label, row in extras:
        ee = row["extra"]
        line = f"extra anchor for {label}: {extra_label} {ee['rps']:,.0f} req/s, p50 "
        line += f"{ee['p50_ms']:.1f} ms, p99 {ee['p99_ms']:.1f} ms;"
        for who in cols:
            line += f" {who} {fmt_ratio(row[who]['rps'], ee['rps'])} of its req/s"
        print(line)
    print("server CPU per request (all threads, medians), the steadier figure on a busy box:")
    for name, label, *_ in scenarios:
        row = summary[name]
        print(
            f"  {label}: "
            + ", ".join(f"{who} {v['cpu_ms']:.3f} ms" for who, v in row.items() if who != "errors")
        )
    errors = sum(r["errors"] for r in summary.values())
    if errors:
        print(f"WARNING: {errors} failed or non-2xx responses; see {tmp}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
