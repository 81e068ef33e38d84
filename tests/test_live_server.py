"""`sentinel serve --workers 2` as a real process: metrics summed across workers, and a
graceful drain on SIGTERM. One server serves both tests (start-up is the slow part); the
SIGTERM test runs last and ends it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REDIS_PREFIX
from tests.live_server import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("prom")
    (directory / "counter_999999.db").write_bytes(b"stale file from an earlier run")
    return directory


@pytest.fixture(scope="module")
def server(metrics_dir: Path, database_url: str, redis_url: str) -> Iterator[LiveServer]:
    """Two workers on the suite's database (already migrated) and Redis, when configured."""
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_LEVEL": "INFO",
        "SHUTDOWN_TIMEOUT_SECS": "15",
        "DATABASE_URL": database_url,
        "DB_MIGRATE_ON_START": "false",
    }
    if redis_url:
        env |= {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": REDIS_PREFIX}
    server = LiveServer(env, workers=2).start()
    yield server
    server.kill()


def _total(text: str, route: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "sentinel_http_requests_total"
                and sample.labels.get("route") == route
            ):
                total += sample.value
    return total


# Counted on a route the start-up wait never calls: a start-up probe that timed out while the
# second worker was still starting is answered (and counted) by it later, after `before`.
COUNTED = "/health/live"


async def test_metrics_add_up_across_worker_processes(server, metrics_dir):
    assert not (metrics_dir / "counter_999999.db").exists(), "stale files must be cleared"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        before = _total((await client.get("/metrics")).text, COUNTED)
        pids: set[str] = set()
        sent = 0
        # Fresh connections spread the requests over both workers (the second may still be
        # starting when the first answers).
        deadline = time.monotonic() + 60
        while len(pids) < 2 or sent < 20:
            assert time.monotonic() < deadline, f"only workers {pids} answered"
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as one_shot:
                assert (await one_shot.get(COUNTED)).status_code == 200
            sent += 1
            pids = {p.name.split("_")[-1] for p in metrics_dir.glob("counter_*.db")}
        # Whichever worker answers the scrape reports the sum over all workers. A request is
        # counted just after its response goes out, so the very last one may lag a moment.
        totals = []
        for _ in range(20):
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as one_shot:
                r = await one_shot.get("/metrics")
            assert r.status_code == 200
            totals.append(_total(r.text, COUNTED))
            if totals[-4:] == [before + sent] * 4:
                break
            await asyncio.sleep(0.1)
        assert totals[-4:] == [before + sent] * 4, totals


async def _served(url: str) -> bool:
    """Whether a new connection gets an answer (it must not once shutdown has begun)."""
    try:
        async with httpx.AsyncClient(timeout=10) as fresh:
            await fresh.get(url + "/health/live")
    except httpx.HTTPError:
        return False
    return True


async def test_sigterm_finishes_in_flight_request_then_stops_cleanly(server):
    sigterm_sent = asyncio.Event()

    async def slow_body():
        # The request is in flight (headers and part of the body sent) when SIGTERM lands.
        yield b'{"reading": "'
        await sigterm_sent.wait()
        await asyncio.sleep(4.0)
        yield b'still arriving after SIGTERM"}'

    async with httpx.AsyncClient(timeout=30) as client:
        in_flight = asyncio.create_task(
            client.post(
                server.url + "/echo",
                content=slow_body(),
                headers={"Content-Type": "application/json"},
            )
        )
        await asyncio.sleep(0.5)
        assert not in_flight.done()
        started = time.monotonic()
        server.process.send_signal(15)
        sigterm_sent.set()
        # uvicorn's supervisor checks for the signal every 0.5 s before it forwards SIGTERM to
        # the workers, and a loaded machine adds to that: give both workers time to close their
        # listeners before the newcomer knocks (the in-flight body still has seconds to go).
        await asyncio.sleep(2.0)
        assert not in_flight.done()
        # New connections get no answer while the in-flight request is still running.
        newcomer = asyncio.create_task(_served(server.url))
        response = await in_flight
        assert not await newcomer
    assert response.status_code == 200
    assert response.json() == {"reading": "still arriving after SIGTERM"}
    code = await asyncio.to_thread(server.process.wait, 20)
    elapsed = time.monotonic() - started
    # uvicorn re-raises the captured SIGTERM after a clean shutdown (exit by signal 15).
    assert code in (0, -15), server.log()
    assert elapsed < 15
    log = server.log()
    # Every worker ran its lifespan to the end: components stopped, pools closed.
    assert log.count("Sentinel stopped") == 2, log
    assert "failed" not in log, log
