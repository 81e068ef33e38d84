"""Incidents instead of storms, flapping, inhibition by an offline gateway, and escalation
chains (issue 28 items 1, 2, 3 and 6), end to end against the real channels on loopback.

Time-based steps (updates, resolves, escalation) are driven with a controlled clock through
`AlertDispatcher.housekeep(now)`; the background loop keeps running on the real clock, where
none of them is due yet.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.models.base import utcnow
from tests import test_alert_channels as _channels
from tests.eventing import ABNORMAL, NORMAL, T0, abnormal_episode, alerts, event, eventually, post
from tests.test_alert_channels import channel_settings, counts, wait_alerts

# The loopback channel servers, shared with the channel tests.
kakao_server = _channels.kakao_server
hooks_server = _channels.hooks_server
smtp_server = _channels.smtp_server
servers = _channels.servers


async def incidents(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/incidents", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def incident(client: httpx.AsyncClient, incident_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/incidents/{incident_id}")
    assert r.status_code == 200, r.text
    return r.json()


def messages_of(detail: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(channel, stage) → status of the incident's messages (its first alert's deliveries)."""
    first = next(a for a in detail["alerts"] if a["id"] == detail["first_alert_id"])
    return {(d["channel"], d["stage"]): d["status"] for d in first["deliveries"]}


async def settle(servers, expected: dict[str, int], timeout: float = 20.0) -> None:
    async def done():
        return counts(servers) == expected or None

    try:
        await eventually(done, timeout=timeout, interval=0.05)
    except AssertionError:
        raise AssertionError(f"messages {counts(servers)} != {expected}") from None
    await asyncio.sleep(0.4)  # a repeat would show up here
    assert counts(servers) == expected


async def episode(client: httpx.AsyncClient, source: str, probs: dict[str, float], at: datetime):
    await post(client, event("START", source, at=at))
    await post(client, event("PROBS", source, at=at, seconds=1, probs=probs))
    await post(client, event("END", source, at=at, seconds=2, probs=probs))


def dispatcher(app: Any) -> Any:
    return app.state.container.alert_dispatcher()


async def test_ten_episodes_in_five_minutes_are_one_incident_with_one_message_per_channel(
    make_app, servers
):
    """10 abnormal episodes from one camera → 1 incident, 1 first message and (across two
    dispatching processes) at most 1 update per channel per interval, then 1 resolve."""
    kakao, hooks, smtp = servers
    settings = channel_settings(servers, incident_update_interval_secs=120)
    async with make_app(alerts=settings) as (app_a, a), make_app(alerts=settings) as (app_b, b):
        for i in range(10):
            await abnormal_episode(a if i % 2 else b, "cam-storm")
        await settle(servers, {"kakao": 1, "slack": 1, "webhook": 1, "email": 1})

        [storm] = await incidents(a, source_id="cam-storm")
        assert storm["status"] == "open" and storm["alert_count"] == 10
        assert storm["kind"] == "abnormal_episode" and storm["updates_sent"] == 0
        grouped = await alerts(a, source_id="cam-storm", status="grouped", limit=50)
        assert len(grouped) == 9 and all(g["deliveries"] == [] for g in grouped)
        assert all(storm["id"] in g["last_error"] for g in grouped)

        # Both processes' housekeepers past the update interval at once: one update each.
        now = utcnow() + timedelta(seconds=121)
        created = await asyncio.gather(
            dispatcher(app_a).housekeep(now), dispatcher(app_b).housekeep(now)
        )
        assert sorted(created) == [0, 4]
        await settle(servers, {"kakao": 2, "slack": 2, "webhook": 2, "email": 2})
        assert "계속 발생 중 (10건)" in hooks.slack[-1]["text"]
        assert "Still happening (10 episodes)" in hooks.slack[-1]["text"]

        # Nothing new: no update; a new alert inside the interval: still none.
        assert await dispatcher(app_a).housekeep(now + timedelta(seconds=1)) == 0
        await abnormal_episode(a, "cam-storm")
        assert await dispatcher(app_b).housekeep(now + timedelta(seconds=60)) == 0

        # Quiet for the whole window: the pending update (11 > 10) and one resolve message
        # per channel, written by one of the two processes.
        later = utcnow() + timedelta(seconds=601)
        created = await asyncio.gather(
            dispatcher(app_a).housekeep(later), dispatcher(app_b).housekeep(later)
        )
        # The update and the resolve may be written by either process (or one each): in all,
        # one of each per channel.
        assert sum(created) == 8, created
        await settle(servers, {"kakao": 4, "slack": 4, "webhook": 4, "email": 4})
        # A receiver has the message a moment before its `sent` commit: wait for the rows.
        wanted = {
            (channel, stage): "sent"
            for channel in ("kakao", "slack", "webhook", "email")
            for stage in ("notify", "update:1", "update:2", "resolve")
        }

        async def all_sent():
            found = await incident(a, storm["id"])
            return found if messages_of(found) == wanted else None

        detail = await eventually(all_sent, timeout=20, interval=0.1)
        assert detail["status"] == "resolved" and detail["alert_count"] == 11
        assert "해결됨: cam-storm" in hooks.slack[-1]["text"]
        assert "Resolved: cam-storm" in hooks.slack[-1]["text"]
        assert "(11건)" in hooks.slack[-2]["text"]
    # One message id per delivery: the receivers saw no repeat.
    assert len({m["Message-ID"] for m in smtp.messages}) == 4
    assert len({(m["alert_id"], m["stage"]) for m in hooks.webhook}) == 4
    assert len(kakao.memos) == 4


async def test_acknowledging_an_incident_acknowledges_its_alerts(make_app, servers):
    settings = channel_settings(servers, channels="slack")
    async with make_app(alerts=settings) as (_, client):
        for _ in range(3):
            await abnormal_episode(client, "cam-ack")
        await settle(servers, {"kakao": 0, "slack": 1, "webhook": 0, "email": 0})
        [item] = await incidents(client, source_id="cam-ack")
        r = await client.post(f"/api/v1/incidents/{item['id']}/ack", json={"via": "console"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["acknowledged"] is True
        assert body["incident"]["acked_via"] == "console" and body["incident"]["acked_at"]
        assert all(a["acked_at"] for a in body["incident"]["alerts"])
        again = (await client.post(f"/api/v1/incidents/{item['id']}/ack")).json()
        assert again["acknowledged"] is False
        assert again["incident"]["acked_at"] == body["incident"]["acked_at"]
        assert (await client.get(f"/api/v1/incidents/{item['id']}x")).status_code == 422
        missing = await client.post("/api/v1/incidents/00000000-0000-0000-0000-000000000000/ack")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        bad = await client.get("/api/v1/incidents", params={"status": "closed"})
        assert bad.status_code == 422
        assert [i["id"] for i in await incidents(client, status="open")] == [item["id"]]


async def test_a_flapping_source_says_so_once_then_stays_quiet_until_stable(make_app, servers):
    _kakao, hooks, _smtp = servers
    settings = channel_settings(servers, channels="slack", flap_max_changes=3, flap_window_secs=600)
    async with make_app(alerts=settings) as (app, client):
        # A N A N A: four changes within ten minutes of episode time (> 3).
        for i, probs in enumerate([ABNORMAL, NORMAL, ABNORMAL, NORMAL, ABNORMAL]):
            await episode(client, "cam-flap", probs, T0 + timedelta(seconds=60 * i))
        [flapping] = await wait_alerts(client, "sent", 1, kind="source_flapping")
        assert flapping["label"] == "4"
        # Still flipping: nothing more, behaviour alerts held back with the reason.
        for i, probs in enumerate([NORMAL, ABNORMAL, NORMAL, ABNORMAL], start=5):
            await episode(client, "cam-flap", probs, T0 + timedelta(seconds=60 * i))
        await settle(servers, {"kakao": 0, "slack": 2, "webhook": 0, "email": 0})
        assert (
            "반복해서 오가고" in hooks.slack[-1]["text"] and "cam-flap" in hooks.slack[-1]["text"]
        )
        held = await alerts(client, source_id="cam-flap", status="suppressed")
        assert len(held) == 2 and all("flapping" in a["last_error"] for a in held)
        assert len(await alerts(client, kind="source_flapping")) == 1

        # A neighbour is unaffected.
        await episode(client, "cam-steady", ABNORMAL, T0)
        await settle(servers, {"kakao": 0, "slack": 3, "webhook": 0, "email": 0})

        # Stable for the window: the next abnormal episode alerts again (joining its incident,
        # which is still open, so no new message but no "flapping" either).
        await dispatcher(app).housekeep(utcnow() + timedelta(seconds=601))
        await episode(client, "cam-flap", ABNORMAL, T0 + timedelta(hours=2))
        newest = (await alerts(client, source_id="cam-flap", kind="abnormal_episode"))[0]
        assert newest["status"] != "suppressed", newest


async def test_an_offline_gateway_inhibits_its_cameras_and_no_one_else(make_app, servers):
    _kakao, hooks, _smtp = servers
    settings = channel_settings(servers, channels="slack")
    async with make_app(alerts=settings, events={"source_offline_after_secs": 1}) as (_, client):
        rules = [
            {"source": "*", "channels": ["slack"]},
            {"source": "cam-b1-*", "inhibited_by_offline": "gateway-b1"},
        ]
        r = await client.put("/api/v1/alerts/routes", json={"rules": rules})
        assert r.status_code == 200, r.text
        assert r.json()["rules"][1]["inhibited_by_offline"] == "gateway-b1"
        r = await client.put("/api/v1/admin/sources/gateway-b1", json={"watch_offline": True})
        assert r.status_code == 200, r.text
        await post(client, event("HEARTBEAT", "gateway-b1", at=datetime.now(UTC)))
        [offline] = await wait_alerts(client, "sent", 1, kind="source_offline")
        assert offline["source_id"] == "gateway-b1"

        await abnormal_episode(client, "cam-b1-3")
        await abnormal_episode(client, "cam-c2-1")
        await wait_alerts(client, "sent", 1, kind="abnormal_episode")
        [inhibited] = await alerts(client, status="inhibited")
        assert inhibited["source_id"] == "cam-b1-3" and inhibited["deliveries"] == []
        assert "gateway-b1" in inhibited["last_error"]
        assert offline["id"] in inhibited["last_error"]
        assert await incidents(client, source_id="cam-b1-3") == []

        # The gateway is back: the camera alerts again.
        await post(client, event("HEARTBEAT", "gateway-b1", at=datetime.now(UTC)))
        await wait_alerts(client, "sent", 1, kind="source_recovered")
        await abnormal_episode(client, "cam-b1-3")
        await wait_alerts(client, "sent", 2, kind="abnormal_episode")
        await asyncio.sleep(0.3)
        # The outage incident resolved with the recovery notice (the gateway, with one
        # heartbeat only, may go offline again meanwhile: a new incident).
        outages = await incidents(client, source_id="gateway-b1")
        first_outage = outages[-1]
        assert first_outage["status"] == "resolved" and first_outage["kind"] == "source_offline"
    texts = [m["text"] for m in hooks.slack]
    assert sum("cam-b1-3" in t for t in texts) == 1 and sum("cam-c2-1" in t for t in texts) == 1


async def test_an_escalation_chain_runs_its_steps_and_repeat_until_acknowledged(make_app, servers):
    kakao, hooks, smtp = servers
    settings = channel_settings(servers, channels="kakao,slack,email")
    chain = {
        "steps": [
            {"after_secs": 60, "channels": ["slack"]},
            {"after_secs": 120, "channels": ["email"]},
        ],
        "repeat": 1,
    }
    async with make_app(alerts=settings) as (app, client):
        r = await client.put(
            "/api/v1/alerts/routes",
            json={"rules": [{"source": "*", "channels": ["kakao"], "escalation": chain}]},
        )
        assert r.status_code == 200, r.text
        await abnormal_episode(client, "cam-chain")
        await settle(servers, {"kakao": 1, "slack": 0, "webhook": 0, "email": 0})
        [item] = await incidents(client, source_id="cam-chain")
        opened = datetime.fromisoformat(item["opened_at"])
        run = dispatcher(app).housekeep

        assert datetime.fromisoformat(item["escalation_next_at"]) == opened + timedelta(seconds=60)
        assert await run(opened + timedelta(seconds=59)) == 0
        assert await run(opened + timedelta(seconds=61)) == 1
        assert await run(opened + timedelta(seconds=62)) == 0  # once
        # The next step's due time is stored (an indexed query finds due chains: finished or
        # acknowledged ones never crowd out the rest).
        after_one = await incident(client, item["id"])
        assert datetime.fromisoformat(after_one["escalation_next_at"]) == opened + timedelta(
            seconds=120
        )
        await settle(servers, {"kakao": 1, "slack": 1, "webhook": 0, "email": 0})
        assert "에스컬레이션 1/4단계" in hooks.slack[-1]["text"]
        assert "Escalation step 1 of 4" in hooks.slack[-1]["text"]
        assert await run(opened + timedelta(seconds=121)) == 1
        await settle(servers, {"kakao": 1, "slack": 1, "webhook": 0, "email": 1})
        # The repeat: step 1 again 60 s after the last step.
        assert await run(opened + timedelta(seconds=181)) == 1
        await settle(servers, {"kakao": 1, "slack": 2, "webhook": 0, "email": 1})
        assert "3/4" in hooks.slack[-1]["text"]

        r = await client.post(f"/api/v1/incidents/{item['id']}/ack")
        assert r.status_code == 200 and r.json()["acknowledged"] is True
        # An hour later: no step 4, only the resolve message of the quiet incident.
        assert await run(opened + timedelta(seconds=3600)) == 1
        await settle(servers, {"kakao": 2, "slack": 2, "webhook": 0, "email": 1})
        wanted = {
            ("kakao", "notify"): "sent",
            ("kakao", "resolve"): "sent",
            ("slack", "escalation"): "sent",
            ("email", "escalation:2"): "sent",
            ("slack", "escalation:3"): "sent",
        }

        async def all_sent():
            found = await incident(client, item["id"])
            return found if messages_of(found) == wanted else None

        # A receiver has the message a moment before its `sent` commit: wait for the rows.
        detail = await eventually(all_sent, timeout=20, interval=0.1)
        assert detail["escalation_steps_done"] == 3 and detail["status"] == "resolved"
        assert detail["escalation_next_at"] is None
    assert "에스컬레이션 2/4단계" in smtp.messages[0]["Subject"]
    assert len(kakao.memos) == 2


async def test_an_acknowledgement_cancels_a_step_already_written_but_not_sent(make_app, servers):
    """Across processes: a step row written by one process and not yet sent is cancelled by
    an acknowledgement made through another."""
    # E-mail has no loop of its own here (not in ALERT_CHANNELS) and the housekeeping sweep
    # that would deliver its rows runs once a minute: the step waits for dispatch_once().
    settings = channel_settings(servers, channels="kakao", monitor_interval_secs=60)
    quiet = {**settings, "dispatcher_enabled": False}
    async with make_app(alerts=settings) as (app, client), make_app(alerts=quiet) as (_, other):
        chain = {"steps": [{"after_secs": 30, "channels": ["email"]}]}
        r = await client.put(
            "/api/v1/alerts/routes",
            json={"rules": [{"source": "*", "channels": ["kakao"], "escalation": chain}]},
        )
        assert r.status_code == 200, r.text
        await abnormal_episode(client, "cam-cancel")
        await settle(servers, {"kakao": 1, "slack": 0, "webhook": 0, "email": 0})
        [item] = await incidents(client, source_id="cam-cancel")
        # Write the step without waking the channel loop: the keeper alone, not housekeep().
        keeper = app.state.container.incident_keeper()
        opened = datetime.fromisoformat(item["opened_at"])
        written = await keeper.escalations(opened + timedelta(seconds=31))
        assert written == 1
        r = await other.post(f"/api/v1/incidents/{item['id']}/ack")
        assert r.status_code == 200, r.text
        await dispatcher(app).dispatch_once()
        await settle(servers, {"kakao": 1, "slack": 0, "webhook": 0, "email": 0})
        detail = await incident(client, item["id"])
        assert messages_of(detail)[("email", "escalation")] == "cancelled"


async def test_bad_escalation_and_inhibition_rules_are_refused_clearly(client):
    cases = [
        ({"escalation": {"steps": []}}, "steps"),
        (
            {
                "escalation": {
                    "steps": [
                        {"after_secs": 300, "channels": ["slack"]},
                        {"after_secs": 60, "channels": ["email"]},
                    ]
                }
            },
            "rising",
        ),
        ({"escalation": {"steps": [{"after_secs": 60, "channels": ["pager"]}]}}, "pager"),
        ({"escalation": {"steps": [{"after_secs": -1, "channels": ["slack"]}]}}, "after_secs"),
        ({"escalation": {"steps": [{"after_secs": 0, "channels": ["slack"]}], "repeat": 2}}, "0"),
        ({"inhibited_by_offline": "gw\n1"}, "inhibited_by_offline"),
        ({"active_during": ["nope"]}, "nope"),
    ]
    for extra, fragment in cases:
        r = await client.put("/api/v1/alerts/routes", json={"rules": [{"source": "*", **extra}]})
        assert r.status_code == 422, (extra, r.text)
        assert fragment in r.text, (extra, r.text)
        assert r.json()["code"] == "validation_error"
    r = await client.put(
        "/api/v1/alerts/routes",
        json={"rules": [{"source": "*", "active_during": ["nope"]}]},
        headers={"Accept-Language": "ko"},
    )
    assert "알 수 없는 일정" in r.json()["detail"]
    assert (await client.put("/api/v1/alerts/routes", json={"rules": []})).status_code == 200


async def test_operators_silence_one_off_for_a_day_at_most_admins_for_longer(make_app, clean_state):
    from tests.test_authz import PROD, account

    async with make_app(**PROD) as (app, client):
        operator = await account(app, client, "operator")
        viewer = await account(app, client, "viewer")
        now = datetime.now(UTC)
        day = {"source_id": "cam-op-*", "until": (now + timedelta(hours=23)).isoformat()}
        r = await client.post("/api/v1/silences", json=day, headers=operator)
        assert r.status_code == 201, r.text
        assert r.json()["created_by"].startswith("user:")
        week = {**day, "until": (now + timedelta(days=7)).isoformat()}
        r = await client.post(
            "/api/v1/silences", json=week, headers={**operator, **{"Accept-Language": "ko"}}
        )
        assert r.status_code == 403 and "24시간" in r.json()["detail"], r.text
        assert (await client.post("/api/v1/silences", json=day, headers=viewer)).status_code == 403
        admin = await account(app, client, "admin")
        assert (await client.post("/api/v1/silences", json=week, headers=admin)).status_code == 201
        listed = (await client.get("/api/v1/silences", headers=viewer)).json()["items"]
        assert len(listed) == 2
