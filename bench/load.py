"""Load test: a mix of Sentinel endpoints at increasing concurrency, on loopback only.

    uv run python bench/load.py                      # own server, temp SQLite, ~70 s
    uv run python bench/load.py --levels 1,4,16,64 --seconds 15 --workers 2
    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench \
    REDIS_URL=redis://127.0.0.1:6379/0 uv run python bench/load.py

Starts `sentinel serve` on a free 127.0.0.1 port (or drives `--url`, which must be
loopback), registers a user, and runs closed-loop clients (httpx, keep-alive) that each
walk the weighted endpoint mix for `--seconds` per level, bounded by `--max-requests`.
Endpoints whose routes the server does not have (yet) are left out and listed.
The ask endpoint talks to a local fake LLM provider, never to the internet.

Prints, per level and endpoint: requests, req/s, p50, p99 and errors; the ceiling (the
trivial `/health/live` alone at the top level, same run) with each level's ratio to it,
and the knee: the lowest concurrency that reaches 90 % of the best throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live_server import LiveServer  # noqa: E402

LABELS = ("normal", "fall", "fight")


@dataclass
class Endpoint:
    """One kind of request in the mix."""

    name: str
    method: str
    path: str
    weight: int
    route: str  # the OpenAPI path that must exist for this endpoint to take part
    body: Callable[[random.Random], Any] | None = None


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    elapsed: float = 0.0


def _event(rng: random.Random) -> dict[str, Any]:
    fall = rng.random() * 0.3
    return {
        "source_id": f"bench-cam-{rng.randrange(20)}",
        "event_type": "PROBS",
        "timestamp": datetime.now(UTC).isoformat(),
        "probs": {"normal": round(1 - fall, 4), "fall": round(fall, 4), "fight": 0.0},
    }


def build_mix(features: int, frames: int) -> list[Endpoint]:
    def sequence(rng: random.Random) -> dict[str, Any]:
        return {
            "sequence": [[rng.random() for _ in range(features)] for _ in range(frames)],
            "source_id": "bench",
        }

    questions = [
        "What should the night shift do after a fall alert?",
        "How fast must staff respond to a fight alert?",
        "Who is called when a camera goes offline?",
    ]
    return [
        Endpoint(
            "analyze", "POST", "/api/v1/behavior/analyze", 3, "/api/v1/behavior/analyze", sequence
        ),
        Endpoint("ingest", "POST", "/api/v1/events", 4, "/api/v1/events", _event),
        Endpoint("recent", "GET", "/api/v1/events/recent?limit=20", 2, "/api/v1/events/recent"),
        Endpoint(
            "ask",
            "POST",
            "/api/v1/rag/ask",
            1,
            "/api/v1/rag/ask",
            lambda rng: {"question": rng.choice(questions), "top_k": 3},
        ),
        Endpoint("me", "GET", "/api/v1/users/me", 1, "/api/v1/users/me"),
        Endpoint("health", "GET", "/health", 1, "/health"),
    ]


async def run_level(
    base_url: str,
    headers: dict[str, str],
    mix: list[Endpoint],
    concurrency: int,
    seconds: float,
    max_requests: int,
) -> Stats:
    stats = Stats()
    schedule = [e for e in mix for _ in range(e.weight)]
    issued = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30, limits=limits
    ) as client:

        async def worker(worker_id: int) -> None:
            nonlocal issued
            rng = random.Random(worker_id)
            i = worker_id
            while time.perf_counter() < stop_at and issued < max_requests:
                issued += 1
                endpoint = schedule[i % len(schedule)]
                i += 1
                body = endpoint.body(rng) if endpoint.body else None
                started = time.perf_counter()
                try:
                    r = await client.request(endpoint.method, endpoint.path, json=body)
                    status = str(r.status_code)
                    ok = r.status_code < 400
                except httpx.HTTPError as exc:
                    status, ok = type(exc).__name__, False
                stats.latencies[endpoint.name].append(time.perf_counter() - started)
                stats.statuses[endpoint.name][status] += 1
                if not ok:
                    stats.errors[endpoint.name] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        stats.elapsed = time.perf_counter() - started
    return stats


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def prepare(
    base_url: str, mix: list[Endpoint]
) -> tuple[dict[str, str], list[Endpoint], list[str]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        password = "bench-pass-" + uuid.uuid4().hex[:6]
        r = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
        r.raise_for_status()
        r = await client.post("/api/v1/auth/login", data={"username": email, "password": password})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        paths = set((await client.get("/openapi.json")).json()["paths"])
        chosen = [e for e in mix if e.route in paths]
        missing = [e.name for e in mix if e.route not in paths]
        if "/api/v1/knowledge/docs" in paths and any(e.name == "ask" for e in chosen):
            await client.post(
                "/api/v1/knowledge/docs",
                headers=headers,
                json={
                    "title": "Night shift procedures",
                    "content": "After a fall alert, staff go to the resident within two minutes "
                    "and call the nurse. Fight alerts need two staff members on site.",
                },
            )
        # Warm up each endpoint once (model load, embedding model, first connections).
        for e in chosen:
            body = e.body(random.Random(0)) if e.body else None
            r = await client.request(e.method, e.path, json=body, headers=headers)
            if r.status_code >= 400:
                print(f"warning: {e.name} answered {r.status_code} on warm-up: {r.text[:200]}")
        return headers, chosen, missing


async def model_shape(base_url: str) -> tuple[int, int]:
    """(features per frame, frames) the behaviour model expects, from its metadata."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        try:
            r = await client.get("/api/v1/behavior/model")
            meta = r.json() if r.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            meta = {}
    text = str(meta)
    features = 6
    for key in ("input_size", "num_features", "n_features", "feature_dim", "features"):
        m = re.search(rf"'{key}': (\d+)", text)
        if m:
            features = int(m.group(1))
            break
    frames = 30
    m = re.search(r"'(?:sequence_length|seq_len|window)': (\d+)", text)
    if m:
        frames = int(m.group(1))
    return features, frames


def start_fake_llm() -> tuple[Any, dict[str, str]]:
    try:
        from tests.fakes.llm import FakeLLMServer
    except ImportError:
        return None, {}
    fake = FakeLLMServer().start()
    return fake, {
        "GEMINI_API_KEY": "bench-fake-gemini-key",
        "GEMINI_BASE_URL": fake.url,
        "OPENAI_API_KEY": "bench-fake-openai-key",
        "OPENAI_BASE_URL": fake.url + "/v1",
    }


def print_report(results: list[tuple[int, Stats]], mix: list[Endpoint], ceiling: float) -> None:
    print()
    print(f"{'conc':>4} {'endpoint':<9} {'requests':>8} {'req/s':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'errors':>6}")  # fmt: skip
    summary = []
    for concurrency, stats in results:
        every: list[float] = []
        for e in mix:
            lat = stats.latencies.get(e.name, [])
            every += lat
            print(
                f"{concurrency:>4} {e.name:<9} {len(lat):>8} {len(lat) / stats.elapsed:>8.1f} "
                f"{pct(lat, 50) * 1000:>8.1f} {pct(lat, 99) * 1000:>8.1f} "
                f"{stats.errors.get(e.name, 0):>6}"
            )
            odd = {s: n for s, n in stats.statuses[e.name].items() if not s.startswith(("2", "3"))}
            if odd:
                print(f"{'':>4} {'':<9} statuses: {odd}")
        rps = len(every) / stats.elapsed
        errors = sum(stats.errors.values())
        print(
            f"{concurrency:>4} {'ALL':<9} {len(every):>8} {rps:>8.1f} {pct(every, 50) * 1000:>8.1f} "
            f"{pct(every, 99) * 1000:>8.1f} {errors:>6}"
        )
        print()
        summary.append((concurrency, rps, pct(every, 50), pct(every, 99), errors))

    print(f"ceiling: /health/live alone at concurrency {results[-1][0]}: {ceiling:.1f} req/s")
    print(f"{'conc':>4} {'req/s':>8} {'x ceiling':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for concurrency, rps, p50, p99, errors in summary:
        print(
            f"{concurrency:>4} {rps:>8.1f} {rps / ceiling:>9.2f} {p50 * 1000:>8.1f} "
            f"{p99 * 1000:>8.1f} {errors:>6}"
        )
    best = max(summary, key=lambda s: s[1])
    knee = next(s for s in summary if s[1] >= 0.9 * best[1])
    clean = [s for s in summary if s[4] == 0]
    print(
        f"knee: concurrency {knee[0]} reaches {knee[1]:.1f} req/s (90 % of the best, "
        f"{best[1]:.1f} at {best[0]}); p99 there {knee[3] * 1000:.1f} ms, "
        f"at the top level {summary[-1][3] * 1000:.1f} ms"
    )
    if clean:
        top = max(clean, key=lambda s: s[1])
        print(
            f"highest sustained rate with zero errors: {top[1]:.1f} req/s at concurrency {top[0]}"
        )
    else:
        print("every level had errors")


async def main_async(args: argparse.Namespace) -> int:
    fake, llm_env = (None, {}) if args.url else start_fake_llm()
    server = None
    try:
        if args.url:
            host = urlparse(args.url).hostname
            if host not in ("127.0.0.1", "localhost", "::1"):
                print("refusing a non-loopback target: the load test stays on this machine")
                return 2
            base_url = args.url.rstrip("/")
        else:
            env = {**llm_env, "RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING"}
            for name in ("DATABASE_URL", "REDIS_URL"):
                if os.environ.get(name):
                    env[name] = os.environ[name]
            if env.get("REDIS_URL"):
                env["REDIS_KEY_PREFIX"] = f"sentinel-bench-{uuid.uuid4().hex[:6]}:"
            server = await asyncio.to_thread(LiveServer(env, workers=args.workers).start, 120)
            base_url = server.url
            print(f"server: {base_url} ({args.workers} worker(s), "
                  f"db {'env DATABASE_URL' if 'DATABASE_URL' in env else 'temp SQLite'}, "
                  f"redis {'on' if env.get('REDIS_URL') else 'off'})")  # fmt: skip
        features, frames = await model_shape(base_url)
        headers, mix, missing = await prepare(base_url, build_mix(features, frames))
        print(f"mix: {', '.join(f'{e.name}×{e.weight}' for e in mix)}"
              + (f"; not available on this server: {', '.join(missing)}" if missing else ""))  # fmt: skip
        results = []
        for level in args.levels:
            stats = await run_level(base_url, headers, mix, level, args.seconds, args.max_requests)
            n = sum(len(v) for v in stats.latencies.values())
            print(f"level {level}: {n} requests in {stats.elapsed:.1f} s, "
                  f"{sum(stats.errors.values())} errors")  # fmt: skip
            results.append((level, stats))
        live = Endpoint("live", "GET", "/health/live", 1, "/health/live")
        ceiling_stats = await run_level(
            base_url,
            headers,
            [live],
            args.levels[-1],
            max(3.0, args.seconds / 2),
            args.max_requests,
        )
        ceiling = len(ceiling_stats.latencies["live"]) / ceiling_stats.elapsed
        print_report(results, mix, ceiling)
        return 0
    finally:
        if server is not None:
            server.stop()
        if fake is not None:
            fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Sentinel load test (loopback only)")
    parser.add_argument(
        "--url", help="drive this running server (loopback) instead of starting one"
    )
    parser.add_argument("--levels", default="1,2,4,8,16,32",
                        type=lambda s: [int(x) for x in s.split(",")])  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="per level")
    parser.add_argument("--max-requests", type=int, default=50_000, help="per level")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
