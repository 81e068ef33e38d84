"""Alert channels end to end, each against a real server on loopback in its wire format:
the fake Kakao API, a Slack-shaped incoming webhook, a receiver that verifies the webhook
HMAC signature, and a real SMTP server (aiosmtpd). Exactly once per channel with faults,
routing, silences, acknowledgement and escalation, offline sources, the hourly budget.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.clients.notifiers.webhook import verify
from app.services.alert_text import safe_source_id
from tests.eventing import abnormal_episode, alerts, event, eventually, post
from tests.fakes.kakao import NO_SCOPE, FakeKakao
from tests.fakes.receivers import FakeHooks, SmtpServer

LINK = "https://sentinel.example.com/alerts"
ALL = "kakao,slack,webhook,email"


@pytest.fixture(scope="session")
def hooks_server() -> FakeHooks:
    server = FakeHooks().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> SmtpServer:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kakao_server() -> FakeKakao:
    server = FakeKakao()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def servers(kakao_server, hooks_server, smtp_server, clean_state):
    kakao_server.reset()
    hooks_server.reset()
    smtp_server.reset()
    return kakao_server, hooks_server, smtp_server


def channel_settings(servers, **extra: Any) -> dict[str, Any]:
    kakao, hooks, smtp = servers
    return {
        "kakao_api_base_url": kakao.url,
        "kakao_auth_base_url": kakao.url,
        "kakao_access_token": "access-1",
        "kakao_refresh_token": "refresh-1",
        "kakao_rest_api_key": FakeKakao.REST_API_KEY,
        "kakao_timeout_secs": 2.0,
        "channels": ALL,
        "slack_webhook_url": hooks.slack_url,
        "webhook_url": hooks.webhook_url,
        "webhook_secret": hooks.secret,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "email_from": "sentinel@example.com",
        "email_to": "ops@example.com,oncall@example.com",
        "http_timeout_secs": 2.0,
        "link_url": LINK,
        "dispatcher_enabled": True,
        "dispatch_interval_secs": 0.05,
        "monitor_interval_secs": 0.1,
        "retry_base_secs": 0.05,
        "retry_max_secs": 0.2,
        "cooldown_secs": 0,
        **extra,
    }


def counts(servers) -> dict[str, int]:
    kakao, hooks, smtp = servers
    return {
        "kakao": len(kakao.memos),
        "slack": len(hooks.slack),
        "webhook": len(hooks.webhook),
        "email": len(smtp.messages),
    }


async def wait_alerts(client, status: str, count: int, timeout: float = 20.0, **params: Any):
    async def check():
        items = await alerts(client, status=status, **params)
        return items if len(items) >= count else None

    return await eventually(check, timeout=timeout, interval=0.05)


async def test_three_episodes_give_exactly_three_messages_on_each_channel_with_one_failing_3_times(
    make_app, servers
):
    _kakao, hooks, _smtp = servers
    hooks.webhook_script = [503, 503, 503]
    async with make_app(alerts=channel_settings(servers)) as (_, client):
        for source in ("cam-a", "cam-b", "cam-c"):
            await abnormal_episode(client, source)
        items = await wait_alerts(client, "sent", 3)
        await asyncio.sleep(0.5)  # a repeat on any channel would show up here
        assert counts(servers) == {"kakao": 3, "slack": 3, "webhook": 3, "email": 3}
        assert hooks.webhook_requests == 6 and hooks.bad_signatures == 0
        for item in items:
            by_channel = {d["channel"]: d for d in item["deliveries"]}
            assert set(by_channel) == {"kakao", "slack", "webhook", "email"}
            assert all(d["status"] == "sent" for d in by_channel.values())
            assert by_channel["kakao"]["attempts"] == 1 and by_channel["email"]["attempts"] == 1
            assert by_channel["slack"]["attempts"] == 1
        assert sum(i["deliveries"][0]["attempts"] for i in items) >= 3
        webhook_attempts = sum(
            d["attempts"] for i in items for d in i["deliveries"] if d["channel"] == "webhook"
        )
        assert webhook_attempts == 6
    sources = sorted(m["source_id"] for m in hooks.webhook)
    assert sources == ["cam-a", "cam-b", "cam-c"]
    assert sorted(len({m["alert_id"] for m in hooks.webhook}) for _ in [0]) == [3]


async def test_a_channel_that_is_down_never_blocks_or_repeats_the_others(make_app, servers):
    kakao, hooks, smtp = servers
    smtp.script = ["451 4.3.0 mail system busy, try later"] * 1000
    async with make_app(alerts=channel_settings(servers, max_attempts=100)) as (_, client):
        for source in ("down-1", "down-2", "down-3"):
            await abnormal_episode(client, source)

        async def others_done():
            c = counts(servers)
            return c["kakao"] == c["slack"] == c["webhook"] == 3

        await eventually(others_done, timeout=20)

        async def email_refused_once():
            rows = await alerts(client)
            email = [d for a in rows for d in a["deliveries"] if d["channel"] == "email"]
            return any("451" in (d["last_error"] or "") for d in email) and (rows, email)

        # The first e-mail attempt may still be in flight when the other channels are done.
        pending, email = await eventually(email_refused_once, timeout=20)
        assert all(a["status"] in ("pending", "sending") for a in pending)
        assert all(d["status"] != "sent" for d in email), email
        smtp.script.clear()  # the mail server is back
        await wait_alerts(client, "sent", 3)
        await asyncio.sleep(0.5)
    assert counts(servers) == {"kakao": 3, "slack": 3, "webhook": 3, "email": 3}
    assert kakao.memo_requests == 3 and hooks.slack_requests == 3


async def test_restart_mid_delivery_sends_the_rest_once_and_repeats_nothing(make_app, servers):
    _kakao, hooks, _smtp = servers
    hooks.slack_script = [(500, "internal_error")] * 1000
    settings = channel_settings(servers, max_attempts=100)
    async with make_app(alerts=settings) as (_, client):
        await abnormal_episode(client, "restart-cam")

        async def slack_tried():
            return hooks.slack_requests >= 2 and counts(servers)["email"] == 1

        await eventually(slack_tried, timeout=20)
    assert counts(servers) == {"kakao": 1, "slack": 0, "webhook": 1, "email": 1}
    hooks.slack_script.clear()
    async with make_app(alerts=settings) as (_, client):
        [alert] = await wait_alerts(client, "sent", 1)
        await asyncio.sleep(0.5)
    assert counts(servers) == {"kakao": 1, "slack": 1, "webhook": 1, "email": 1}
    slack = next(d for d in alert["deliveries"] if d["channel"] == "slack")
    assert slack["attempts"] >= 3


async def test_two_dispatching_processes_deliver_each_channel_exactly_once(make_app, servers):
    kakao, hooks, smtp = servers
    kakao.delay_secs = hooks.delay_secs = 0.01
    settings = channel_settings(servers)
    async with make_app(alerts=settings) as (_, a), make_app(alerts=settings) as (_, b):
        sources = [f"pair-{i}" for i in range(8)]
        await asyncio.gather(
            *(abnormal_episode(a if i % 2 else b, s) for i, s in enumerate(sources))
        )
        await wait_alerts(a, "sent", 8, timeout=30)
        await asyncio.sleep(0.5)
    assert counts(servers) == {"kakao": 8, "slack": 8, "webhook": 8, "email": 8}
    assert sorted(m["source_id"] for m in hooks.webhook) == sorted(sources)
    assert len({m["Message-ID"] for m in smtp.messages}) == 8


async def test_webhook_is_signed_over_timestamp_and_raw_body(make_app, servers):
    _kakao, hooks, _smtp = servers
    async with make_app(alerts=channel_settings(servers, channels="webhook")) as (_, client):
        end = await abnormal_episode(client, "cam-signed")
        [alert] = await wait_alerts(client, "sent", 1)
    [payload] = hooks.webhook
    [headers] = hooks.webhook_headers
    assert payload["alert_id"] == alert["id"] and payload["kind"] == "abnormal_episode"
    assert payload["source_id"] == "cam-signed" and payload["label"] == "fall"
    assert payload["link"] == LINK and payload["stage"] == "notify"
    assert alert["episode_id"] == end["episode_id"]
    assert headers["x-sentinel-delivery"] == f"{alert['id']}:notify"
    signature, timestamp = headers["x-sentinel-signature"], headers["x-sentinel-timestamp"]
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert verify(hooks.secret, timestamp, raw, signature)
    assert not verify("another-secret", timestamp, raw, signature)
    assert not verify(hooks.secret, timestamp, raw.replace(b"cam-signed", b"cam-forged"), signature)
    assert not verify(hooks.secret, str(int(timestamp) - 3600), raw, signature)  # replayed
    assert hooks.bad_signatures == 0


async def test_webhook_refused_signature_is_a_permanent_failure(make_app, servers):
    _kakao, hooks, _smtp = servers
    settings = channel_settings(servers, channels="webhook", webhook_secret="wrong-secret")
    async with make_app(alerts=settings) as (_, client):
        await abnormal_episode(client, "cam-badsig")
        [alert] = await wait_alerts(client, "failed", 1)
    assert hooks.bad_signatures == 1 and hooks.webhook == []
    assert "401" in alert["last_error"] and alert["attempts"] == 1


async def test_email_carries_the_full_text_in_both_languages(make_app, servers):
    _kakao, _hooks, smtp = servers
    async with make_app(alerts=channel_settings(servers, channels="email")) as (_, client):
        await abnormal_episode(client, "cam-mail")
        [alert] = await wait_alerts(client, "sent", 1)
    [message] = smtp.messages
    assert smtp.envelopes == [("sentinel@example.com", ["ops@example.com", "oncall@example.com"])]
    assert message["Subject"].startswith("[Sentinel] 이상 행동 감지: cam-mail")
    assert message["Message-ID"] == f"<{alert['id']}.notify@example.com>"
    body = message.get_content()
    assert "이상 행동이 감지되었습니다." in body and "Abnormal behaviour detected." in body
    assert "2026-11-25 10:00:03 KST" in body and "0.90" in body and LINK in body


async def test_english_only_texts_in_utc(make_app, servers):
    kakao, hooks, _smtp = servers
    settings = channel_settings(servers, channels="kakao,slack", language="en", timezone="UTC")
    async with make_app(alerts=settings) as (_, client):
        await abnormal_episode(client, "cam-en")
        await wait_alerts(client, "sent", 1)
    text = kakao.memos[0]["text"]
    assert (
        text
        == "[Sentinel] Abnormal behaviour on cam-en: fall (score 0.90) at 2026-11-25 01:00:03 UTC"
    )
    assert "이상" not in hooks.slack[0]["text"] and LINK in hooks.slack[0]["text"]


def test_source_ids_are_sanitised_before_reaching_a_message():
    assert safe_source_id("cam-lobby-1") == "cam-lobby-1"
    assert safe_source_id("카메라-3") == "카메라-3"
    evil = "cam\u202e <!channel> *URGENT* [call](http://x)\u200b\ttransfer\x7f"
    cleaned = safe_source_id(evil)
    assert all(c not in cleaned for c in "<>*[]()\u202e\u200b\t\x7f :")
    assert safe_source_id("x" * 300).endswith("…") and len(safe_source_id("x" * 300)) == 64
    assert safe_source_id("\u202e\u200b") == "?"


async def test_attacker_worded_source_ids_reach_channels_sanitised(make_app, servers):
    kakao, hooks, smtp = servers
    source = "cam <!channel> URGENT\u202e <b>pay</b> " + "z" * 90
    async with make_app(alerts=channel_settings(servers)) as (_, client):
        await abnormal_episode(client, source)
        [alert] = await wait_alerts(client, "sent", 1)
    assert alert["source_id"] == source  # stored as sent; only messages are sanitised
    texts = [kakao.memos[0]["text"], hooks.slack[0]["text"], smtp.messages[0].get_content()]
    texts.append(hooks.webhook[0]["text"])
    for text in texts:
        assert "<!channel>" not in text and "<b>" not in text and "\u202e" not in text
        assert "z" * 70 not in text
    assert hooks.webhook[0]["source_id"].startswith("cam_channel_URGENT_b_pay_/b_zz")
    assert len(kakao.memos[0]["text"]) <= 200


async def test_global_hourly_budget_suppresses_alerts_past_the_limit(make_app, servers):
    kakao, _hooks, _smtp = servers
    # No grouping: each repeat is its own alert, spending the budget.
    settings = channel_settings(
        servers, channels="kakao", max_per_hour=2, cooldown_secs=0, incident_group_window_secs=0
    )
    async with make_app(alerts=settings) as (_, client):
        for source in ("spam-0", "spam-1", "spam-0", "spam-1"):
            await abnormal_episode(client, source)
        await wait_alerts(client, "sent", 2)
        suppressed = await alerts(client, status="suppressed")
        # The global cap never holds back a source's first alert of the hour (issue 29).
        await abnormal_episode(client, "fresh")
        await wait_alerts(client, "sent", 3)
        await asyncio.sleep(0.3)
    assert len(suppressed) == 2 and all(
        "ALERT_MAX_PER_HOUR=2" in a["last_error"] for a in suppressed
    )
    assert all(a["deliveries"] == [] for a in suppressed)
    assert len(kakao.memos) == 3


async def test_silenced_source_sends_nothing_and_is_listed_as_silenced(make_app, servers):
    _kakao, _hooks, _smtp = servers
    async with make_app(alerts=channel_settings(servers)) as (_, client):
        until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        r = await client.post(
            "/api/v1/silences",
            json={"source_id": "cam-maint-*", "until": until, "reason": "렌즈 청소"},
        )
        assert r.status_code == 201, r.text
        silence = r.json()
        assert silence["source_id"] == "cam-maint-*" and silence["active"] is True
        listed = (await client.get("/api/v1/silences")).json()["items"]
        assert [s["id"] for s in listed] == [silence["id"]]

        await abnormal_episode(client, "cam-maint-1")
        await abnormal_episode(client, "cam-open")
        await wait_alerts(client, "sent", 1)
        [silenced] = await alerts(client, status="silenced")
        assert silenced["source_id"] == "cam-maint-1" and silence["id"] in silenced["last_error"]
        assert silenced["deliveries"] == []
        await asyncio.sleep(0.3)
        assert counts(servers) == {"kakao": 1, "slack": 1, "webhook": 1, "email": 1}

        r = await client.delete(f"/api/v1/silences/{silence['id']}")
        assert r.status_code == 204
        assert (await client.delete(f"/api/v1/silences/{silence['id']}")).status_code == 404
        assert (await client.get("/api/v1/silences")).json()["items"] == []
        # Ended early, it still says what it held back (issue 28, maintenance windows).
        [summary] = await wait_alerts(client, "sent", 1, kind="maintenance_summary")
        assert summary["data"]["counts"] == {"abnormal_episode": 1}
        await post(client, event("START", "cam-maint-1", seconds=10))
        await abnormal_episode(client, "cam-maint-1")
        await wait_alerts(client, "sent", 2, kind="abnormal_episode")
        await asyncio.sleep(0.3)
    assert counts(servers) == {"kakao": 3, "slack": 3, "webhook": 3, "email": 3}
    assert "cam-maint-*" in _hooks.slack[1]["text"] and "이상 행동 1건" in _hooks.slack[1]["text"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"source_id": "cam-*", "until": "2020-01-01T00:00:00Z"}, "past"),
        ({"source_id": "cam-*", "until": "2099-01-01T00:00:00"}, "until"),
        ({"source_id": "cam-*", "until": "2099-01-01T00:00:00Z"}, "366 days"),
        ({"source_id": "cam\n*", "until": "2099-01-01T00:00:00Z"}, "source_id"),
        ({"source_id": "", "until": "2099-01-01T00:00:00Z"}, "source_id"),
        ({"source_id": "cam-*", "until": "9999-12-31T23:59:59-23:00"}, "out of range"),
    ],
)
async def test_bad_silences_are_refused_with_a_clear_4xx(client, body, fragment):
    r = await client.post("/api/v1/silences", json=body)
    assert r.status_code == 422, r.text
    assert fragment in r.text


async def test_routes_send_sources_and_kinds_to_chosen_channels(make_app, servers, tmp_path: Path):
    _kakao, hooks, _smtp = servers
    async with make_app(alerts=channel_settings(servers)) as (_, client):
        r = await client.get("/api/v1/alerts/routes")
        assert r.status_code == 200
        assert r.json()["origin"] == "default" and r.json()["enabled_channels"] == ALL.split(",")
        rules = [
            {"source": "cam-yard-*", "channels": ["slack"]},
            {"source": "cam-lobby*", "kinds": ["abnormal_episode"], "channels": ["kakao", "email"]},
        ]
        r = await client.put("/api/v1/alerts/routes", json={"rules": rules})
        assert r.status_code == 200, r.text
        assert r.json()["origin"] == "api" and len(r.json()["rules"]) == 2
        bad = await client.put("/api/v1/alerts/routes", json={"rules": [{"channels": ["fax"]}]})
        assert bad.status_code == 422 and "fax" in bad.text

        await abnormal_episode(client, "cam-yard-2")
        await abnormal_episode(client, "cam-lobby")
        await abnormal_episode(client, "cam-roof")
        await wait_alerts(client, "sent", 2)
        [unrouted] = await alerts(client, status="undeliverable")
        assert unrouted["source_id"] == "cam-roof" and "route" in unrouted["last_error"]
        await asyncio.sleep(0.3)
        assert counts(servers) == {"kakao": 1, "slack": 1, "webhook": 0, "email": 1}
        assert "cam-yard-2" in hooks.slack[0]["text"]

        r = await client.put("/api/v1/alerts/routes", json={"rules": []})
        assert r.json()["origin"] == "default"

    path = tmp_path / "routes.json"
    path.write_text(json.dumps([{"source": "*", "channels": ["webhook"]}]))
    settings = channel_settings(servers, routes_file=str(path))
    async with make_app(alerts=settings) as (_, client):
        assert (await client.get("/api/v1/alerts/routes")).json()["origin"] == "file"
        await abnormal_episode(client, "cam-file")
        await wait_alerts(client, "sent", 3)
    assert counts(servers)["webhook"] == 1


async def test_acknowledged_alert_is_not_escalated_and_the_other_escalates_once(make_app, servers):
    kakao, _hooks, smtp = servers
    settings = channel_settings(
        servers, channels="kakao", escalate_after_secs=3, escalation_channels="email"
    )
    async with make_app(alerts=settings) as (_, client):
        await abnormal_episode(client, "cam-acked")
        [acked] = await alerts(client, source_id="cam-acked")  # acknowledged at once
        r = await client.post(f"/api/v1/alerts/{acked['id']}/ack")
        await abnormal_episode(client, "cam-ignored")
        await wait_alerts(client, "sent", 2)
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["acked_at"] and first["acked_by"]
        again = (await client.post(f"/api/v1/alerts/{acked['id']}/ack")).json()
        assert again["acked_at"] == first["acked_at"]
        missing = await client.post("/api/v1/alerts/00000000-0000-0000-0000-000000000000/ack")
        assert missing.status_code == 404

        await eventually(lambda: _count(smtp.messages, 1), timeout=20)
        await asyncio.sleep(1.0)  # several housekeeping ticks: still one escalation
        ignored = (await alerts(client, source_id="cam-ignored"))[0]
        assert ignored["escalated_at"] is not None and ignored["status"] == "sent"
        stages = {(d["channel"], d["stage"]): d["status"] for d in ignored["deliveries"]}
        assert stages == {("kakao", "notify"): "sent", ("email", "escalation"): "sent"}
        assert (await alerts(client, source_id="cam-acked"))[0]["escalated_at"] is None
    [mail] = smtp.messages
    assert "cam-ignored" in mail["Subject"] and "에스컬레이션" in mail["Subject"]
    assert len(kakao.memos) == 2


async def _count(items: list, n: int) -> bool:
    return len(items) >= n


async def test_a_permanently_failing_channel_raises_a_delivery_failure_alert_elsewhere(
    make_app, servers
):
    kakao, hooks, _smtp = servers
    kakao.fail_next_memos(1, NO_SCOPE)
    async with make_app(alerts=channel_settings(servers, channels="kakao,slack")) as (_, client):
        await abnormal_episode(client, "cam-noscope")
        [partial] = await wait_alerts(client, "partial", 1)
        [failure] = await wait_alerts(client, "sent", 1, kind="delivery_failure")
        await asyncio.sleep(0.3)
    assert "-402" in partial["last_error"] and partial["last_error"].startswith("kakao: ")
    assert failure["label"] == "kakao" and [d["channel"] for d in failure["deliveries"]] == [
        "slack"
    ]
    assert len(hooks.slack) == 2 and "알림을 전송하지 못했습니다" in hooks.slack[1]["text"]
    assert kakao.memos == []


async def test_offline_camera_gives_one_alert_and_one_recovery(make_app, servers):
    kakao, _hooks, _smtp = servers
    settings = channel_settings(servers, channels="kakao")
    async with make_app(alerts=settings, events={"source_offline_after_secs": 1}) as (_, client):
        # Only sources an admin registered (or an agent's patterns cover) are watched.
        r = await client.put("/api/v1/admin/sources/cam-hb", json={"watch_offline": True})
        assert r.status_code == 200, r.text
        await post(client, event("HEARTBEAT", "cam-hb", at=datetime.now(UTC)))
        await post(client, event("START", "cam-no-heartbeat"))  # never monitored
        [offline] = await wait_alerts(client, "sent", 1, kind="source_offline")
        assert offline["source_id"] == "cam-hb"
        await asyncio.sleep(2.0)  # still down: nothing more
        assert len(await alerts(client)) == 1 and len(kakao.memos) == 1

        await post(client, event("HEARTBEAT", "cam-hb", at=datetime.now(UTC)))
        [recovered] = await wait_alerts(client, "sent", 1, kind="source_recovered")
        assert recovered["source_id"] == "cam-hb"
        await asyncio.sleep(0.3)
        assert len(kakao.memos) == 2
    assert "소스 연결 끊김: cam-hb" in kakao.memos[0]["text"]
    assert "Source back online: cam-hb" in kakao.memos[1]["text"]


async def test_alert_routes_and_silences_are_admin_only_in_production(make_app, servers):
    import uuid

    token = "svc-" + uuid.uuid4().hex * 2
    async with make_app(
        environment="production",
        security={"access_token": token, "data_encryption_key": "k" * 40},
        alerts=channel_settings(servers, dispatcher_enabled=False),
    ) as (_, client):
        auth = {"Authorization": f"Bearer {token}"}
        until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        calls = [
            ("POST", "/api/v1/silences", {"source_id": "cam-*", "until": until}),
            ("PUT", "/api/v1/alerts/routes", {"rules": []}),
            ("POST", "/api/v1/alerts/00000000-0000-0000-0000-000000000000/ack", None),
            ("DELETE", "/api/v1/silences/00000000-0000-0000-0000-000000000000", None),
        ]
        for method, path, body in calls:
            r = await client.request(method, path, json=body)
            assert r.status_code == 401, (path, r.text)
            r = await client.request(method, path, json=body, headers=auth)
            assert r.status_code == 403, (path, r.text)
        assert (await client.get("/api/v1/alerts/routes", headers=auth)).status_code == 200
        assert (await client.get("/api/v1/silences", headers=auth)).status_code == 200
