"""Alerts end to end against a fake Kakao server on loopback (real HTTP, Kakao's wire format)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select

from app.core.crypto import SecretBox
from app.models.alert import KakaoCredential
from tests.eventing import ABNORMAL, abnormal_episode, alerts, event, eventually, post
from tests.fakes.kakao import NO_SCOPE, FakeKakao

LINK = "https://sentinel.example.com/alerts"


@pytest.fixture(scope="session")
def kakao_server() -> FakeKakao:
    server = FakeKakao()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kakao(kakao_server: FakeKakao, clean_state) -> FakeKakao:
    kakao_server.reset()
    return kakao_server


def kakao_settings(kakao: FakeKakao, **extra: Any) -> dict[str, Any]:
    return {
        "kakao_api_base_url": kakao.url,
        "kakao_auth_base_url": kakao.url,
        "kakao_access_token": "access-1",
        "kakao_refresh_token": "refresh-1",
        "kakao_rest_api_key": FakeKakao.REST_API_KEY,
        "kakao_timeout_secs": 2.0,
        "channels": "kakao",
        "link_url": LINK,
        "button_title": "Open Sentinel",
        "dispatcher_enabled": True,
        "dispatch_interval_secs": 0.05,
        "retry_base_secs": 0.02,
        "retry_max_secs": 0.1,
        "cooldown_secs": 0,
        **extra,
    }


@pytest.fixture
def alert_app(make_app, kakao):
    @asynccontextmanager
    async def factory(**alert_overrides: Any) -> AsyncIterator[Any]:
        async with make_app(alerts=kakao_settings(kakao, **alert_overrides)) as pair:
            yield pair

    return factory


async def wait_status(client, status: str, count: int = 1, timeout: float = 15.0):
    async def check():
        items = await alerts(client, status=status)
        return items if len(items) >= count else None

    return await eventually(check, timeout=timeout)


async def test_abnormal_episode_sends_exactly_one_memo_with_the_right_text_and_link(
    alert_app, kakao
):
    async with alert_app() as (_, client):
        end_body = event("END", "cam-lobby", seconds=3, probs=ABNORMAL)
        await post(client, event("START", "cam-lobby"))
        await post(client, event("PROBS", "cam-lobby", seconds=1, probs=ABNORMAL))
        end = await post(client, end_body)
        [alert] = await wait_status(client, "sent")
        assert alert["episode_id"] == end["episode_id"] and alert["attempts"] == 1
        assert len(kakao.memos) == 1
        memo = kakao.memos[0]
        assert memo["object_type"] == "text" and len(memo["text"]) <= 200
        assert "cam-lobby" in memo["text"] and "fall" in memo["text"]
        # ALERT_TIMEZONE defaults to Asia/Seoul; ALERT_LANGUAGE to Korean then English.
        assert "0.90" in memo["text"] and "2026-11-25 10:00:03 KST" in memo["text"]
        assert memo["text"].startswith("[Sentinel] 이상 행동 감지: cam-lobby")
        assert memo["link"] == {"web_url": LINK, "mobile_web_url": LINK}
        assert memo["button_title"] == "Open Sentinel"

        # The agent resends the same END: duplicate, and no second memo.
        again = await post(client, end_body)
        assert again["duplicate"] is True
        await asyncio.sleep(0.3)
        assert len(kakao.memos) == 1
        assert len(await alerts(client)) == 1


async def test_kakao_500s_then_recovery_still_yield_exactly_one_memo(alert_app, kakao):
    kakao.fail_next_memos(3)
    async with alert_app() as (_, client):
        await abnormal_episode(client, "cam-flaky")
        [alert] = await wait_status(client, "sent")
        assert alert["attempts"] == 4
        assert kakao.memo_requests == 4 and len(kakao.memos) == 1


@pytest.mark.parametrize("code", [-1, -7, -603, -9798])
async def test_retryable_kakao_codes_are_retried(alert_app, kakao, code):
    kakao.fail_next_memos(1, (400, {"msg": "temporary", "code": code}))
    async with alert_app() as (_, client):
        await abnormal_episode(client, "cam-retry")
        [alert] = await wait_status(client, "sent")
        assert alert["attempts"] == 2 and len(kakao.memos) == 1


async def test_expired_token_is_refreshed_once_stored_encrypted_and_the_memo_goes_out(
    alert_app, kakao
):
    kakao.expire("access-1")
    kakao.rotate_refresh = True
    async with alert_app() as (app, client):
        await abnormal_episode(client, "cam-token")
        [alert] = await wait_status(client, "sent")
        assert alert["attempts"] == 1
        assert len(kakao.refresh_requests) == 1
        form = kakao.refresh_requests[0]
        assert form == {
            "grant_type": "refresh_token",
            "client_id": FakeKakao.REST_API_KEY,
            "refresh_token": "refresh-1",
        }
        new_access = kakao.memo_tokens[0]
        assert new_access != "access-1"
        [new_refresh] = kakao.valid_refresh
        container = app.state.container
        async with container.database().sessions() as session:
            row = (await session.execute(select(KakaoCredential))).scalar_one()
        assert new_access not in row.access_token_enc and "refresh" not in row.refresh_token_enc
        box = SecretBox(container.settings().security)
        assert box.decrypt(row.access_token_enc) == new_access
        assert box.decrypt(row.refresh_token_enc) == new_refresh

        # The next alert uses the stored token without another refresh.
        await abnormal_episode(client, "cam-token-2")
        await wait_status(client, "sent", count=2)
        assert len(kakao.refresh_requests) == 1 and kakao.memo_tokens == [new_access] * 2


async def test_rejected_refresh_token_fails_the_alert_with_the_reason(alert_app, kakao):
    kakao.expire("access-1")
    kakao.valid_refresh = set()
    async with alert_app() as (_, client):
        await abnormal_episode(client, "cam-grant")
        [alert] = await wait_status(client, "failed")
        assert "invalid_grant" in alert["last_error"] and alert["attempts"] == 1
        assert kakao.memos == []


async def test_permanent_kakao_error_fails_without_retrying(alert_app, kakao):
    kakao.fail_next_memos(1, NO_SCOPE)
    async with alert_app() as (_, client):
        await abnormal_episode(client, "cam-scope")
        [alert] = await wait_status(client, "failed")
        assert "-402" in alert["last_error"] and alert["attempts"] == 1
        assert kakao.memo_requests == 1


async def test_retries_stop_at_alert_max_attempts(alert_app, kakao):
    kakao.fail_next_memos(50)
    async with alert_app(max_attempts=3) as (_, client):
        await abnormal_episode(client, "cam-down")
        [alert] = await wait_status(client, "failed")
        assert alert["attempts"] == 3 and alert["last_error"].startswith("gave up after 3 attempts")
        assert kakao.memo_requests == 3 and kakao.memos == []


async def test_cooldown_suppresses_a_repeating_source_without_incident_grouping(alert_app, kakao):
    # With grouping on (the default) the repeat joins the open incident instead (see
    # tests/test_incidents.py); the cooldown still guards a site that turned grouping off.
    async with alert_app(cooldown_secs=300, incident_group_window_secs=0) as (_, client):
        await abnormal_episode(client, "cam-flap")
        await abnormal_episode(client, "cam-flap")
        await abnormal_episode(client, "cam-other")
        await wait_status(client, "sent", count=2)
        [suppressed] = await alerts(client, status="suppressed")
        assert suppressed["source_id"] == "cam-flap" and "cooldown" in suppressed["last_error"]
        await asyncio.sleep(0.2)
        assert len(kakao.memos) == 2


async def test_without_kakao_credentials_alerts_are_undeliverable(alert_app, kakao):
    async with alert_app(kakao_access_token="", kakao_refresh_token="") as (_, client):
        await abnormal_episode(client, "cam-nokakao")
        [alert] = await wait_status(client, "undeliverable")
        assert "KAKAO_ACCESS_TOKEN" in alert["last_error"]
        health = (await client.get("/health")).json()["services"]["alerts"]
        assert health["kakao_configured"] is False and health["dispatcher_running"] is True
    assert kakao.memo_requests == 0


async def test_two_app_instances_sharing_the_database_never_double_send(make_app, kakao):
    kakao.delay_secs = 0.01
    settings = kakao_settings(kakao)
    async with make_app(alerts=settings) as (_, a), make_app(alerts=settings) as (_, b):
        sources = [f"cam-{i}" for i in range(16)]
        await asyncio.gather(
            *(abnormal_episode(a if i % 2 else b, s) for i, s in enumerate(sources))
        )
        await wait_status(a, "sent", count=16, timeout=30)
        await asyncio.sleep(0.2)
    texts = [m["text"] for m in kakao.memos]
    assert len(texts) == 16
    assert sorted(t.split(" on ")[1].split(":")[0] for t in texts) == sorted(sources)
    async with make_app(alerts=settings) as (_, client):
        items = await alerts(client, limit=100)
    assert len(items) == 16 and all(a["status"] == "sent" for a in items)
    assert all(len(a["deliveries"]) == 1 and a["deliveries"][0]["attempts"] == 1 for a in items)


async def test_pending_alerts_survive_a_restart_and_are_delivered_once(alert_app, kakao):
    kakao.fail_next_memos(1000)
    async with alert_app(retry_base_secs=0.05, retry_max_secs=0.05) as (_, client):
        await abnormal_episode(client, "cam-restart")

        async def attempted():
            items = await alerts(client)
            return items and items[0]["attempts"] >= 1 and items[0]["status"] == "pending"

        await eventually(attempted)
    kakao.memo_script.clear()
    async with alert_app() as (_, client):
        [alert] = await wait_status(client, "sent")
    assert len(kakao.memos) == 1 and alert["source_id"] == "cam-restart"


async def test_health_reports_the_dispatcher_and_pending_alerts(alert_app, kakao):
    kakao.fail_next_memos(1000)
    async with alert_app(retry_base_secs=5, retry_max_secs=5) as (_, client):
        await abnormal_episode(client, "cam-health")
        await eventually(lambda: alerts(client, status="pending"))
        health = (await client.get("/health")).json()
        section = health["services"]["alerts"]
        assert section["status"] == "healthy" and section["dispatcher_running"] is True
        assert section["pending"] == 1 and section["oldest_pending_age_secs"] >= 0
        assert section["kakao_configured"] is True


async def test_debug_token_check_reports_validity_and_never_echoes_the_token(alert_app, kakao):
    async with alert_app() as (_, client):
        r = await client.get("/api/v1/debug/kakao/token-check")
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["valid"] is True and data["expires_in"] == 21000
        assert data["app_id"] == 7654 and data["user_id"] == 1234567
        assert "access-1" not in r.text
        kakao.expire("access-1")
        data = (await client.get("/api/v1/debug/kakao/token-check")).json()
        assert data["valid"] is True and data["refreshed"] is True
        assert "access-" not in r.text


async def test_debug_send_test_sends_a_memo_now(alert_app, kakao):
    async with alert_app() as (_, client):
        r = await client.post("/api/v1/debug/kakao/send-test", json={"text": "hello from test"})
        assert r.status_code == 200, r.text
        assert kakao.memos[-1]["text"] == "hello from test"
        r = await client.post("/api/v1/debug/kakao/send-test")
        assert r.status_code == 200 and "Test memo" in kakao.memos[-1]["text"]
        kakao.fail_next_memos(1, NO_SCOPE)
        r = await client.post("/api/v1/debug/kakao/send-test", json={})
        assert r.status_code == 502 and r.json()["code"] == "kakao_error"


async def test_debug_send_test_without_credentials_is_503(alert_app, kakao):
    async with alert_app(kakao_access_token="", kakao_refresh_token="") as (_, client):
        r = await client.post("/api/v1/debug/kakao/send-test", json={"text": "x"})
        assert r.status_code == 503 and r.json()["code"] == "kakao_not_configured"


async def test_debug_endpoints_are_admin_only_in_production(make_app, kakao):
    token = "svc-" + uuid.uuid4().hex * 2
    async with make_app(
        environment="production",
        security={"access_token": token, "data_encryption_key": "k" * 40},
        alerts=kakao_settings(kakao, dispatcher_enabled=False),
    ) as (_, client):
        r = await client.get("/api/v1/debug/kakao/token-check")
        assert r.status_code == 401
        r = await client.get(
            "/api/v1/debug/kakao/token-check", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 403
    assert kakao.memo_requests == 0


async def test_shutdown_finishes_the_memo_in_flight_and_records_it(alert_app, make_app, kakao):
    kakao.delay_secs = 0.4
    async with alert_app() as (_, client):
        await abnormal_episode(client, "cam-shutdown")
        await wait_status(client, "sending")
    # The app has stopped: the memo that was in flight went out and was recorded as sent.
    assert len(kakao.memos) == 1
    async with make_app() as (_, client):
        [alert] = await alerts(client)
    assert alert["status"] == "sent" and alert["attempts"] == 1


async def test_delivered_alert_status_reaches_the_episode_summary_for_the_assistant(
    alert_app, kakao
):
    from tests.fakes.fixtures import reset_rag_state

    async with alert_app() as (app, client):
        await reset_rag_state(app)
        end = await abnormal_episode(client, "camera-7")
        await wait_status(client, "sent")

        async def summary() -> str | None:
            await app.state.container.event_knowledge().join()
            r = await client.post(
                "/api/v1/rag/ask", json={"question": "What happened at camera-7?"}
            )
            assert r.status_code == 200, r.text
            first = r.json()["sources"][0]
            assert first["doc_id"] == f"episode:{end['episode_id']}"
            return first["chunk"] if "its status is sent" in first["chunk"] else None

        assert "camera-7" in await eventually(summary)
