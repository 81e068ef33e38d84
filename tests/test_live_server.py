"""`sentinel serve` as a real process: graceful shutdown on SIGTERM and multiprocess metrics."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live_server import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            return True
    return False


async def test_sigterm_finishes_in_flight_request_then_stops_cleanly():
    server = LiveServer({"LOG_LEVEL": "INFO", "SHUTDOWN_TIMEOUT_SECS": "15"}).start()
    try:
        sigterm_sent = asyncio.Event()

        async def slow_body():
            # The request is in flight (headers and part of the body sent) when SIGTERM lands.
            yield b'{"reading": "'
            await sigterm_sent.wait()
            await asyncio.sleep(1.0)
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
            await asyncio.sleep(0.5)
            # New connections are refused while the in-flight request is still running.
            assert not in_flight.done()
            assert await asyncio.to_thread(_refuses_connections, server.port)
            response = await in_flight
        assert response.status_code == 200
        assert response.json() == {"reading": "still arriving after SIGTERM"}
        code = await asyncio.to_thread(server.process.wait, 20)
        elapsed = time.monotonic() - started
        # uvicorn re-raises the captured SIGTERM after a clean shutdown (exit by signal 15).
        assert code in (0, -15), server.log()
        assert elapsed < 15
        log = server.log()
        # The lifespan ran to its end: components stopped, pools closed.
        assert "Sentinel stopped" in log, log
        assert "failed" not in log, log
    finally:
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


async def test_metrics_add_up_across_worker_processes(tmp_path):
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale file from an earlier run")
    server = LiveServer({"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, workers=2).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            before = _total((await client.get("/metrics")).text, "/health/live")
            # Fresh connections spread the requests over both workers. The server answers
            # once the first worker is up; the second may still be loading (torch, the
            # model), so keep sending until both have counted requests.
            sent, pids = 0, set()
            deadline = time.monotonic() + 60
            while sent < 20 or (len(pids) < 2 and time.monotonic() < deadline):
                async with httpx.AsyncClient(base_url=server.url, timeout=10) as one_shot:
                    assert (await one_shot.get("/health/live")).status_code == 200
                sent += 1
                pids = {p.name.split("_")[-1] for p in metrics_dir.glob("counter_*.db")}
                pids.discard("999999.db")
                if sent >= 20 and len(pids) < 2:
                    await asyncio.sleep(0.2)
            assert len(pids) >= 2, f"expected files from both workers, got {pids}"
            # Whichever worker answers the scrape reports the sum over all workers.
            for _ in range(4):
                r = await client.get("/metrics", headers={"Connection": "close"})
                assert r.status_code == 200
                assert _total(r.text, "/health/live") == before + sent
    finally:
        server.stop()
