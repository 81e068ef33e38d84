"""Fault tests around event ingest and alert delivery, with real processes.

- SIGKILL during sustained ingest: every event that got a 2xx is in the database after restart.
- Kakao unreachable (the fake server is down, connections refused): alerts stay pending, then
  are delivered exactly once when it comes back.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from app.models.event import Event
from tests.conftest import REDIS_PREFIX
from tests.eventing import abnormal_episode, alerts, eventually
from tests.fakes.kakao import FakeKakao
from tests.faults import CuttableProxy
from tests.live_server import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _server_env(database_url: str, redis_url: str) -> dict[str, str]:
    # The suite's database is already migrated.
    env = {
        "DATABASE_URL": database_url,
        "DB_MIGRATE_ON_START": "false",
        "SHUTDOWN_TIMEOUT_SECS": "5",
    }
    if redis_url:
        env |= {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": REDIS_PREFIX}
    return env


async def _stored(database_url: str, source_ids: list[str]) -> set[uuid.UUID]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(Event.id).where(Event.source_id.in_(source_ids)))
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def test_sigkill_during_sustained_ingest_loses_no_acknowledged_event(
    make_app, database_url, redis_url, clean_state
):
    env = _server_env(database_url, redis_url)
    server = await asyncio.to_thread(LiveServer(env).start)
    acknowledged: set[uuid.UUID] = set()
    refused = 0
    sources = [f"kill-cam-{i}" for i in range(6)]
    stop = asyncio.Event()

    async def agent(source_id: str) -> None:
        nonlocal refused
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                event_id = uuid.uuid4()
                body = {
                    "event_id": str(event_id),
                    "source_id": source_id,
                    "event_type": "PROBS",
                    "timestamp": datetime.now(UTC).isoformat(),
                    "probs": {"normal": 0.9, "fall": 0.1},
                }
                try:
                    r = await client.post("/api/v1/events", json=body)
                except httpx.HTTPError:
                    refused += 1
                    await asyncio.sleep(0.05)
                    continue
                if 200 <= r.status_code < 300:
                    acknowledged.add(event_id)

    try:
        agents = [asyncio.create_task(agent(s)) for s in sources]
        await eventually(lambda: _count_at_least(acknowledged, 60), timeout=30, interval=0.05)
        server.process.send_signal(signal.SIGKILL)  # mid-stream: requests are in flight
        await asyncio.to_thread(server.process.wait, 10)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*agents)
    finally:
        stop.set()
        server.kill()

    # Restart the application on the same database (in this process: the interpreter and
    # model are already loaded, so this costs a lifespan, not a second server start-up).
    async with make_app() as (_, client):
        assert (await client.get("/health/ready")).status_code == 200
        stored = await _stored(database_url, sources)
    kept = len(acknowledged & stored)
    print(
        f"\nSIGKILL during ingest: acknowledged {len(acknowledged)}, stored {kept} "
        f"({100 * kept / len(acknowledged):.1f} %), refused or cut {refused}, "
        f"stored without an acknowledgement {len(stored - acknowledged)}"
    )
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged events were lost"


async def _count_at_least(items: set, n: int) -> bool:
    return len(items) >= n


async def test_alerts_wait_while_kakao_is_unreachable_and_are_delivered_once_after(
    make_app, clean_state
):
    kakao = FakeKakao()
    kakao.start()
    proxy = await CuttableProxy("127.0.0.1", kakao.port).start()
    await proxy.cut()  # Kakao is down: connections to its address are refused
    try:
        async with make_app(
            alerts={
                "kakao_api_base_url": f"http://127.0.0.1:{proxy.port}",
                "kakao_auth_base_url": f"http://127.0.0.1:{proxy.port}",
                "kakao_access_token": "access-1",
                "kakao_refresh_token": "refresh-1",
                "kakao_rest_api_key": FakeKakao.REST_API_KEY,
                "kakao_timeout_secs": 0.5,
                "channels": "kakao",
                "dispatcher_enabled": True,
                "dispatch_interval_secs": 0.05,
                "max_attempts": 50,
                "retry_base_secs": 0.05,
                "retry_max_secs": 0.2,
                "cooldown_secs": 0,
            },
        ) as (_, client):
            await abnormal_episode(client, "kakao-down-cam")
            pending = await eventually(lambda: _with_attempts(client, 3), timeout=6, interval=0.1)
            assert pending["status"] in ("pending", "sending")
            assert pending["last_error"], "the failed attempts should say why"
            assert kakao.memo_requests == 0

            await proxy.restore()  # Kakao is reachable again at the same address
            sent = await eventually(lambda: _sent(client), timeout=15, interval=0.1)
            assert sent["attempts"] >= 3
            await asyncio.sleep(1.0)  # a duplicate delivery would show up in this window
            assert len(kakao.memos) == 1, kakao.memos
            assert [a["status"] for a in await alerts(client)] == ["sent"]
    finally:
        await proxy.close()
        kakao.stop()


async def _with_attempts(client, n: int):
    items = await alerts(client)
    return items[0] if items and items[0]["attempts"] >= n else None


async def _sent(client):
    items = await alerts(client)
    return items[0] if items and items[0]["status"] == "sent" else None


async def test_shutdown_mid_delivery_finishes_the_memo_and_a_restart_does_not_resend(
    make_app, clean_state
):
    """No alert half-sent, none lost: the dispatcher completes the delivery in flight when
    the app stops, records it, and the next process does not send it again."""
    kakao = FakeKakao()
    kakao.start()
    kakao.delay_secs = 1.0  # Kakao is slow: the memo is in flight when shutdown begins
    settings = {
        "kakao_api_base_url": kakao.url,
        "kakao_auth_base_url": kakao.url,
        "kakao_access_token": "access-1",
        "kakao_refresh_token": "refresh-1",
        "kakao_rest_api_key": FakeKakao.REST_API_KEY,
        "kakao_timeout_secs": 5.0,
        "channels": "kakao",
        "dispatcher_enabled": True,
        "dispatch_interval_secs": 0.05,
        "cooldown_secs": 0,
    }
    try:
        async with make_app(alerts=settings, shutdown_timeout_secs=10) as (_, client):
            await abnormal_episode(client, "shutdown-cam")
            await eventually(lambda: _sending(client), timeout=10, interval=0.02)
            assert not kakao.memos  # Kakao has not answered yet
        # The lifespan has ended: the memo in flight went out and was recorded as sent.
        assert len(kakao.memos) == 1
        kakao.delay_secs = 0.0
        async with make_app(alerts=settings) as (_, client):
            items = await alerts(client)
            assert [a["status"] for a in items] == ["sent"], items
            await asyncio.sleep(0.5)  # a restarted dispatcher must not send it again
        assert len(kakao.memos) == 1
    finally:
        kakao.stop()


async def _sending(client) -> bool:
    items = await alerts(client)
    return bool(items) and items[0]["status"] == "sending"
