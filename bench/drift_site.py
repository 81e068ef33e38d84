"""A drifted site, end to end: operator labels, retraining, promotion and hot swap.

One command:

    uv run python bench/drift_site.py [--epochs N] [--episodes N] [--out FILE]
        [--database-url postgresql+asyncpg://... --redis-url redis://...]

What an operations team would do, against two real `sentinel serve` processes (A and B)
sharing one database (default: a temp SQLite file, no Redis; with --database-url/--redis-url,
PostgreSQL + Redis and jobs run by A, JOB_WEB_CONSUMES=true; A creates a missing database,
the run's sources are tagged and training is limited to them, the database is left in place and
the run's Redis keys, under a private prefix, are deleted):

1. A site whose sensors drifted: BasicMotions with the axes reordered ([1,2,0,4,5,3]) and
   +0.5 added. Its labelled data is the drifted train split (40), its unseen data the drifted
   test split (40).
2. Each labelled sequence goes in as an episode (POST /events START with the frames, then END,
   over 4 sources) and an operator labels it (POST /episodes/{id}/feedback); the feedback
   summary shows the shipped model's false alarms and misses on the site.
3. The shipped model is scored on the site's unseen sequences and on the original BasicMotions
   test split (POST /behavior/analyze): accuracy, false alarms, misses.
4. POST /models/train {"include_feedback": true} on A; while the job runs, GET /health/live on
   A every 50 ms (p50/p99); the job's wall time and result figures.
5. POST /models/{new}/activate on A (force only if the gate refuses); swap time = from the
   activate response until A and B (polled every 100 ms) answer with the new model_version,
   under a stream of concurrent analyze requests to B that must all be 200 with the old or new
   version.
6. The new version is scored again (via B); then rollback to the shipped version, timed the
   same way (B must serve it within 10 s).

Prints a table, writes the figures as JSON (--out, default bench/results-drift-site.json) and
exits 1 if the retrained version scores < 0.90 on the site's unseen sequences or < 0.95 on
BasicMotions test, if any analyze request failed during a swap, or if a swap did not reach
both processes (rollback: B within 10 s); 2 if the run itself broke (server logs kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ml.data import SequenceSet, load_basic_motions  # noqa: E402
from bench.hotpath import free_port, stop_server, wait_idle  # noqa: E402

API = "/api/v1"
PERM = [1, 2, 0, 4, 5, 3]
OFFSET = 0.5
SOURCES = 4
SITE_MIN_ACCURACY = 0.90
BASE_MIN_ACCURACY = 0.95
ROLLBACK_LIMIT_S = 10.0
SWAP_TIMEOUT_S = 60.0
STREAM_WORKERS = 4


class BenchError(Exception):
    """The run cannot go on (a server or an endpoint misbehaved)."""


# ---------------------------------------------------------------------------------------------
# servers


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen
    log: Path


def redis_prefix(tag: str) -> str:
    return f"drift-site-{tag}:"


def server_env(
    who: str, tmp: Path, database_url: str, redis_url: str, tag: str, migrate: bool
) -> dict[str, str]:
    """The process environment of `sentinel serve` (nothing inherited that picks a backend)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "JOB_", "DB_"))
    }
    env.update(
        ENVIRONMENT="development",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DB_MIGRATE_ON_START="true" if migrate else "false",
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
        LOG_ACCESS="false",
        EVENT_LOG_PATH=str(tmp / f"events-{who}.jsonl"),
        CHROMA_PATH=str(tmp / f"chroma-{who}"),
    )
    if migrate and database_url.startswith("postgresql"):
        env["DB_CREATE_IF_MISSING"] = "true"  # --database-url may name a new database
    if redis_url:
        env["REDIS_KEY_PREFIX"] = redis_prefix(tag)
        env["JOB_WEB_CONSUMES"] = "true" if who == "A" else "false"
    return env


def start_server(who: str, env: dict[str, str], tmp: Path, limit_s: float = 300) -> Server:
    """`sentinel serve --port P`; ready when /health/ready answers 200 and the CPU settles."""
    port = free_port()
    log = tmp / f"server-{who}.log"
    handle = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=handle,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server {who} exited during start (rc {proc.returncode}); see {log}")
        try:
            if httpx.get(url + "/health/ready", timeout=2).status_code == 200:
                wait_idle(proc.pid, limit=120)
                return Server(who, url, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise BenchError(f"server {who} not ready in {limit_s:.0f} s; see {log}")


def drop_redis_keys(redis_url: str, prefix: str) -> int:
    """Delete this run's keys (its private REDIS_KEY_PREFIX) from a shared Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class Split:
    """Sequences (as JSON-ready frame lists) with their true labels."""

    sequences: list[list[list[float]]]
    labels: list[str]


def more_episodes(split: Split, n: int, seed: int = 7) -> Split:
    """`n` labelled sequences: the split's own first, then noisy copies (5 % of each channel's
    spread) of them, as a site that labelled more episodes of the same behaviours would have."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for k in range(n):
        base = np.asarray(split.sequences[k % len(split.sequences)])
        if k >= len(split.sequences):
            base = base + rng.normal(0, 0.05, base.shape) * base.std(0)
        seqs.append(np.round(base, 5).tolist())
        labels.append(split.labels[k % len(split.labels)])
    return Split(seqs, labels)


def to_split(
    part: SequenceSet, drift: bool, perm: list[int] = PERM, offset: float = OFFSET
) -> Split:
    x = part.x[:, :, perm] + offset if drift else part.x
    seqs = [
        np.round(x[i, : part.lengths[i]].astype(np.float64), 5).tolist() for i in range(len(part))
    ]
    return Split(seqs, [str(y) for y in part.y])


# ---------------------------------------------------------------------------------------------
# HTTP helpers


def error_code(response: httpx.Response) -> str | None:
    """The error code in either shape: {"code": ...} or {"error": {"code": ...}}."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    inner = body.get("error")
    if isinstance(inner, dict) and inner.get("code"):
        return str(inner["code"])
    return str(body["code"]) if body.get("code") else None


def gate_of(body: dict[str, Any]) -> dict[str, Any]:
    """A gate refusal's figures, wherever the error body carries them."""
    for holder in (body.get("details"), body.get("error"), body):
        if isinstance(holder, dict) and isinstance(holder.get("gate"), dict):
            return holder["gate"]
    return body


async def call(
    client: httpx.AsyncClient, method: str, path: str, expect: tuple[int, ...] = (200,), **kw: Any
) -> Any:
    response = await client.request(method, API + path, **kw)
    if response.status_code not in expect:
        raise BenchError(f"{method} {API}{path} -> {response.status_code}: {response.text[:800]}")
    return response.json() if response.content else None


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


# ---------------------------------------------------------------------------------------------
# steps


@dataclass
class Score:
    model_version: str
    n: int
    accuracy: float
    false_alarms: int
    misses: int


async def score(
    client: httpx.AsyncClient, split: Split, normal: set[str], expect_version: str | None = None
) -> Score:
    """Accuracy (top_label), false alarms (anomaly on a normal label) and misses, one batch."""
    body = await call(client, "POST", "/behavior/analyze", json={"sequences": split.sequences})
    results = body["results"]
    versions = {r["model_version"] for r in results}
    if len(versions) != 1 or (expect_version and versions != {expect_version}):
        raise BenchError(f"scored by {sorted(versions)}, expected {expect_version}")
    hits = sum(r["top_label"] == y for r, y in zip(results, split.labels, strict=True))
    false_alarms = sum(
        r["is_anomaly"] and y in normal for r, y in zip(results, split.labels, strict=True)
    )
    misses = sum(
        not r["is_anomaly"] and y not in normal for r, y in zip(results, split.labels, strict=True)
    )
    return Score(versions.pop(), len(results), round(hits / len(results), 4), false_alarms, misses)


async def post_site_episodes(
    client: httpx.AsyncClient, split: Split, sources: list[str]
) -> dict[str, Any]:
    """START (with the frames) + END per labelled sequence, then the operator's label."""
    now = datetime.now(UTC)
    outcomes: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    mismatches: list[str] = []
    started = time.perf_counter()
    for k, (seq, label) in enumerate(zip(split.sequences, split.labels, strict=True)):
        source = sources[k % len(sources)]
        at = now + timedelta(seconds=2 * k)
        start = {
            "event_id": str(uuid.uuid4()),
            "source_id": source,
            "event_type": "START",
            "timestamp": at.isoformat(),
            "sequence": seq,
        }
        end = {
            "event_id": str(uuid.uuid4()),
            "source_id": source,
            "event_type": "END",
            "timestamp": (at + timedelta(seconds=1)).isoformat(),
        }
        await call(client, "POST", "/events", expect=(200, 202), json=start)
        accepted = await call(client, "POST", "/events", expect=(200, 202), json=end)
        episode_id = accepted.get("episode_id")
        if not episode_id:
            raise BenchError(f"END on {source} answered no episode_id: {accepted}")
        fb = await call(client, "POST", f"/episodes/{episode_id}/feedback", json={"label": label})
        outcomes[str(fb.get("outcome"))] += 1
        # The episode read carries the label and the outcome too.
        episode = await call(client, "GET", f"/episodes/{episode_id}")
        decisions[str(episode.get("decision"))] += 1
        shown = (episode.get("feedback") or {}).get("label"), episode.get("feedback_outcome")
        if shown != (label, fb.get("outcome")):
            mismatches.append(f"{episode_id}: episode shows {shown}, feedback {fb}")
    return {
        "episodes": len(split.labels),
        "seconds": round(time.perf_counter() - started, 2),
        "decisions": dict(decisions),
        "outcomes": dict(outcomes),
        "episode_read_mismatches": mismatches,
    }


async def feedback_summary(client: httpx.AsyncClient, sources: list[str]) -> dict[str, Any]:
    body = await call(client, "GET", "/feedback/summary")
    rows = [row for row in body.get("sources", []) if row.get("source_id") in sources]
    total = {
        key: sum(int(row.get(key) or 0) for row in rows)
        for key in ("labelled", "false_alarms", "misses", "with_sequence")
    }
    return {"sources": rows, "total": total, "server_total": body.get("total")}


async def train(
    a: httpx.AsyncClient, epochs: int | None, source_ids: list[str] | None
) -> dict[str, Any]:
    """POST /models/train on A, poll the job, sample A's /health/live every 50 ms meanwhile."""
    body: dict[str, Any] = {"include_feedback": True}
    if epochs is not None:
        body["epochs"] = epochs
    if source_ids:
        body["source_ids"] = source_ids
    live_ms: list[float] = []
    live_errors = 0
    done = asyncio.Event()

    async def sampler() -> None:
        nonlocal live_errors
        async with httpx.AsyncClient(base_url=str(a.base_url), timeout=10) as probe:
            while not done.is_set():
                t0 = time.perf_counter()
                try:
                    r = await probe.get("/health/live")
                    if r.status_code == 200:
                        live_ms.append((time.perf_counter() - t0) * 1000)
                    else:
                        live_errors += 1
                except httpx.HTTPError:
                    live_errors += 1
                await asyncio.sleep(0.05)

    t0 = time.perf_counter()
    accepted = await call(a, "POST", "/models/train", expect=(200, 202), json=body)
    job_id = accepted.get("job_id") or accepted.get("id")
    task = asyncio.create_task(sampler())
    last_msg = None
    try:
        while True:
            job = await call(a, "GET", f"/jobs/{job_id}")
            msg = (job.get("state"), job.get("progress_message"))
            if msg != last_msg:
                print(f"  job {job['state']:9} {job.get('progress', 0):.0%} {msg[1] or ''}")
                last_msg = msg
            if job["state"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.25)
    finally:
        done.set()
        await task
    wall = time.perf_counter() - t0
    if job["state"] != "succeeded":
        raise BenchError(f"training job {job_id} failed: {job.get('error')}")
    return {
        "job_id": str(job_id),
        "wall_s": round(wall, 2),
        "attempts": job.get("attempts"),
        "worker": job.get("worker"),
        "result": job.get("result") or {},
        "live_p50_ms": pct(live_ms, 50),
        "live_p99_ms": pct(live_ms, 99),
        "live_max_ms": round(max(live_ms), 2) if live_ms else None,
        "live_samples": len(live_ms),
        "live_errors": live_errors,
    }


@dataclass
class Swap:
    target: str
    previous: str
    forced: bool = False
    gate: dict[str, Any] | None = None
    activate_ms: float = 0.0
    a_s: float | None = None
    b_s: float | None = None
    stream_requests: int = 0
    stream_versions: dict[str, int] = field(default_factory=dict)
    stream_failures: list[str] = field(default_factory=list)
    old_after_new: int = 0


async def activate_and_watch(
    a: httpx.AsyncClient, b: httpx.AsyncClient, target: str, previous: str, probe_seq: list
) -> Swap:
    """Activate `target` on A; time until A and B answer with it, under concurrent load on B."""
    swap = Swap(target, previous)
    stop = asyncio.Event()
    answers: list[tuple[float, str | None]] = []
    body = {"sequence": probe_seq, "source_id": "drift-bench"}

    async def stream() -> None:
        while not stop.is_set():
            try:
                r = await b.post(API + "/behavior/analyze", json=body)
            except httpx.HTTPError as exc:
                swap.stream_failures.append(f"{type(exc).__name__}: {exc}")
                continue
            swap.stream_requests += 1
            version = r.json().get("model_version") if r.status_code == 200 else None
            if r.status_code != 200 or version not in (target, previous):
                swap.stream_failures.append(f"{r.status_code} {version} {r.text[:200]}")
            answers.append((time.perf_counter(), version))

    async def wait_for(client: httpx.AsyncClient, since: float) -> float | None:
        deadline = since + SWAP_TIMEOUT_S
        while time.perf_counter() < deadline:
            r = await client.post(API + "/behavior/analyze", json=body)
            if r.status_code == 200 and r.json().get("model_version") == target:
                return round(time.perf_counter() - since, 3)
            await asyncio.sleep(0.1)
        return None

    workers = [asyncio.create_task(stream()) for _ in range(STREAM_WORKERS)]
    try:
        await asyncio.sleep(1.0)  # traffic before the swap
        t0 = time.perf_counter()
        path = f"{API}/models/{target}/activate"
        r = await a.post(path, json={"force": False, "reason": "drift-site bench"})
        if r.status_code == 409 and error_code(r) == "model_gate":
            detail = r.json()
            swap.gate = gate_of(detail)
            print(f"  gate refused {target}: {detail.get('detail')}; activating with force")
            swap.forced = True
            r = await a.post(path, json={"force": True, "reason": "drift-site bench (forced)"})
        if r.status_code != 200:
            raise BenchError(f"POST {path} -> {r.status_code}: {r.text[:800]}")
        responded = time.perf_counter()
        swap.activate_ms = round((responded - t0) * 1000, 1)
        swap.a_s, swap.b_s = await asyncio.gather(wait_for(a, responded), wait_for(b, responded))
        await asyncio.sleep(1.0)  # traffic after the swap
    finally:
        stop.set()
        await asyncio.gather(*workers)
    swap.stream_versions = dict(Counter(str(v) for _, v in answers))
    first_new = min((t for t, v in answers if v == target), default=None)
    if first_new is not None:
        swap.old_after_new = sum(1 for t, v in answers if t > first_new and v == previous)
    return swap


# ---------------------------------------------------------------------------------------------
# the run


async def run(args: argparse.Namespace, a_url: str, b_url: str, sources: list[str]) -> dict:
    data = load_basic_motions()
    site_train = more_episodes(to_split(data.train, True, args.perm, args.offset), args.episodes)
    site_unseen = to_split(data.test, True, args.perm, args.offset)
    base_test = to_split(data.test, drift=False)
    timeout = httpx.Timeout(120, connect=10)
    limits = httpx.Limits(max_connections=32)
    async with (
        httpx.AsyncClient(base_url=a_url, timeout=timeout, limits=limits) as a,
        httpx.AsyncClient(base_url=b_url, timeout=timeout, limits=limits) as b,
    ):
        info = await call(b, "GET", "/behavior/model")
        shipped = info["model_version"]
        normal = set(info["normal_labels"])
        models = await call(a, "GET", "/models")
        print(f"shipped model {shipped}; /models active {models.get('active')}")
        if models.get("active") != shipped:
            raise BenchError(f"/models says {models.get('active')} is active, B serves {shipped}")

        print(
            f"posting {len(site_train.labels)} labelled site episodes over {len(sources)} sources"
        )
        episodes = await post_site_episodes(a, site_train, sources)
        summary = await feedback_summary(b, sources)
        t = summary["total"]
        print(
            f"  {episodes['episodes']} episodes in {episodes['seconds']} s; feedback: "
            f"{t['labelled']} labelled, {t['false_alarms']} false alarms, {t['misses']} misses "
            f"(outcomes {episodes['outcomes']})"
        )

        before = {
            "site_unseen": await score(b, site_unseen, normal, shipped),
            "base_test": await score(b, base_test, normal, shipped),
        }
        print(
            f"  shipped: site {score_line(before['site_unseen'])}; base {score_line(before['base_test'])}"
        )

        print("training (POST /models/train on A)")
        job = await train(a, args.epochs, sources if args.database_url else None)
        new = job["result"].get("model_version")
        if not new:
            raise BenchError(f"the training job gave no model_version: {job['result']}")
        print(
            f"  {new} in {job['wall_s']} s (train_seconds {job['result'].get('train_seconds')}); "
            f"/health/live p50 {job['live_p50_ms']} ms p99 {job['live_p99_ms']} ms"
        )
        version = await call(a, "GET", f"/models/{new}")
        print(f"  status {version.get('status')}, trained_on {version.get('trained_on')}")

        print(f"activating {new}")
        probe = site_unseen.sequences[0]
        swap = await activate_and_watch(a, b, new, shipped, probe)
        print(f"  {swap_line(swap)}")
        after = {
            "site_unseen": await score(b, site_unseen, normal, new),
            "base_test": await score(b, base_test, normal, new),
        }
        print(
            f"  retrained: site {score_line(after['site_unseen'])}; base {score_line(after['base_test'])}"
        )

        print(f"rolling back to {shipped}")
        rollback = await activate_and_watch(a, b, shipped, new, probe)
        print(f"  {swap_line(rollback)}")
        final = await call(a, "GET", "/models")
        statuses = {
            m["model_version"]: {"status": m["status"], "activations": len(m["activations"])}
            for m in final["items"]
            if m["model_version"] in (shipped, new)
        }
        print(f"  /models at the end: active {final.get('active')}, {statuses}")

    return {
        "shipped_version": shipped,
        "retrained_version": new,
        "episodes": episodes,
        "feedback_summary": summary,
        "shipped": {k: asdict(v) for k, v in before.items()},
        "retrained": {k: asdict(v) for k, v in after.items()},
        "training": job,
        "model_version": version,
        "swap": asdict(swap),
        "rollback": asdict(rollback),
        "active_at_end": final.get("active"),
        "statuses_at_end": statuses,
    }


def score_line(s: Score) -> str:
    return f"accuracy {s.accuracy:.3f}, false alarms {s.false_alarms}, misses {s.misses} of {s.n}"


def swap_line(s: Swap) -> str:
    return (
        f"activate {s.activate_ms} ms{' (forced: the gate refused)' if s.forced else ''}; "
        f"then A {s.a_s} s, B {s.b_s} s; stream on B: {s.stream_requests} requests "
        f"{s.stream_versions}, {len(s.stream_failures)} failed, "
        f"{s.old_after_new} old answers after the first new"
    )


def verdict(report: dict) -> list[str]:
    """What fails the run."""
    problems = []
    site = report["retrained"]["site_unseen"]["accuracy"]
    base = report["retrained"]["base_test"]["accuracy"]
    if site < SITE_MIN_ACCURACY:
        problems.append(f"retrained site-unseen accuracy {site} < {SITE_MIN_ACCURACY}")
    if base < BASE_MIN_ACCURACY:
        problems.append(f"retrained BasicMotions-test accuracy {base} < {BASE_MIN_ACCURACY}")
    for name in ("swap", "rollback"):
        s = report[name]
        if s["stream_failures"]:
            problems.append(f"{len(s['stream_failures'])} analyze requests failed during {name}")
        if s["a_s"] is None or s["b_s"] is None:
            problems.append(f"{name}: not served by both processes within {SWAP_TIMEOUT_S:.0f} s")
    if report["rollback"]["b_s"] is not None and report["rollback"]["b_s"] > ROLLBACK_LIMIT_S:
        problems.append(f"rollback reached B after {report['rollback']['b_s']} s")
    if report["active_at_end"] != report["shipped_version"]:
        problems.append(f"/models active at the end is {report['active_at_end']}")
    return problems


def print_table(report: dict) -> None:
    print(
        "\n| model | version | site-unseen acc | site false alarms | site misses | BasicMotions-test acc |"
    )
    print("|---|---|---|---|---|---|")
    for row in ("shipped", "retrained"):
        s, b = report[row]["site_unseen"], report[row]["base_test"]
        print(
            f"| {row} | {s['model_version']} | {s['accuracy']:.3f} | {s['false_alarms']}/{s['n']} "
            f"| {s['misses']}/{s['n']} | {b['accuracy']:.3f} |"
        )
    tr, sw, rb = report["training"], report["swap"], report["rollback"]
    fs = report["feedback_summary"]["total"]
    print(
        f"\nfeedback on the shipped model's site episodes: {fs['labelled']} labelled, "
        f"{fs['false_alarms']} false alarms, {fs['misses']} misses"
    )
    print(
        f"retraining: job wall {tr['wall_s']} s (train_seconds "
        f"{tr['result'].get('train_seconds')}); /health/live on A during it: p50 "
        f"{tr['live_p50_ms']} ms, p99 {tr['live_p99_ms']} ms, max {tr['live_max_ms']} ms "
        f"({tr['live_samples']} samples, {tr['live_errors']} errors)"
    )
    for name, s in (("swap", sw), ("rollback", rb)):
        print(f"{name}: {swap_line(Swap(**s))}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs for the training job")
    parser.add_argument(
        "--episodes",
        type=int,
        default=40,
        help="labelled site episodes to post (beyond 40: noisy copies of the 40)",
    )
    parser.add_argument(
        "--perm",
        type=lambda v: [int(x) for x in v.split(",")],
        default=PERM,
        help="the site's axis order, e.g. 3,4,5,0,1,2 (accelerometer and gyroscope swapped)",
    )
    parser.add_argument("--offset", type=float, default=OFFSET, help="added to every feature")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-drift-site.json")
    parser.add_argument(
        "--database-url",
        default="",
        help="a shared database (e.g. postgresql+asyncpg://...); default: a temp SQLite file",
    )
    parser.add_argument("--redis-url", default="", help="Redis (jobs then run on A only)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tag = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="drift-site-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'sentinel.db'}"
    # A shared database may hold other runs' episodes: tag this run's sources.
    sources = [
        f"site-{tag}-cam-{k}" if args.database_url else f"site-cam-{k}" for k in range(SOURCES)
    ]
    servers: list[Server] = []
    ok = False
    try:
        # A migrates; B starts once A is ready, so the two never race on it.
        for who in ("A", "B"):
            env = server_env(who, tmp, database_url, args.redis_url, tag, migrate=who == "A")
            servers.append(start_server(who, env, tmp))
            print(f"server {who}: {servers[-1].url} (pid {servers[-1].proc.pid})")
        report = asyncio.run(run(args, servers[0].url, servers[1].url, sources))
        ok = True
    except BenchError as exc:
        print(f"\nFAILED: {exc}\nserver logs: {tmp}", file=sys.stderr)
        return 2
    finally:
        for server in servers:
            stop_server(server.proc)
        if args.redis_url:
            drop_redis_keys(args.redis_url, redis_prefix(tag))
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)

    report["setup"] = {
        "database": "sqlite (temp file)" if not args.database_url else "external",
        "redis": bool(args.redis_url),
        "epochs": args.epochs,
        "episodes": args.episodes,
        "drift": {"perm": args.perm, "offset": args.offset},
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    problems = verdict(report)
    report["problems"] = problems
    print_table(report)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
