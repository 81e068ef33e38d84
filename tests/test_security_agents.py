"""Security round 3, finding 5 (issue 29): sources belong to agents.

Before: one shared `ACCESS_TOKEN` posted for any `source_id`; 3,000 HEARTBEATs with random ids
gave 2,501 `source_offline` alerts, spent the global hourly budget and a real abnormal episode
was `suppressed`; `GET /sources` was one 753 KB answer and `/metrics` grew a series per source.
Each test here replays the attack in production mode and shows it no longer works.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from loguru import logger
from sqlalchemy import func, select

from app.core.metrics import SOURCE_LAST_SEEN
from app.main import check_configuration
from app.models.base import utcnow
from app.models.event import Event
from tests.eventing import ABNORMAL, event
from tests.fakes.receivers import FakeHooks
from tests.test_authz import account

SERVICE_TOKEN = "service-token-for-the-agent-tests-0123456789abcdef"
SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
PROD: dict[str, Any] = {
    "environment": "production",
    "security": {"access_token": SERVICE_TOKEN, "registration": "open"},
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_of(app: Any, client: httpx.AsyncClient) -> dict[str, str]:
    headers = await account(app, client, "admin")
    return {k: v for k, v in headers.items() if k != "X-Email"}


async def new_agent(
    client: httpx.AsyncClient, admin: dict[str, str], name: str, patterns: list[str]
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/admin/agents", json={"name": name, "source_patterns": patterns}, headers=admin
    )
    assert r.status_code == 201, r.text
    return r.json()


async def stored_events(app: Any, source_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(Event)
    if source_id is not None:
        stmt = stmt.where(Event.source_id == source_id)
    async with app.state.container.database().sessions() as session:
        return int((await session.execute(stmt)).scalar_one())


async def abnormal(
    client: httpx.AsyncClient, headers: dict[str, str], source_id: str, at: datetime
) -> None:
    """One abnormal episode (START → PROBS ×2 → END) at `at`."""
    bodies = [
        event("START", source_id, at=at),
        event("PROBS", source_id, at=at, seconds=1, probs=ABNORMAL),
        event("PROBS", source_id, at=at, seconds=2, probs=ABNORMAL),
        event("END", source_id, at=at, seconds=3, probs=ABNORMAL),
    ]
    r = await client.post("/api/v1/events/batch", json={"events": bodies}, headers=headers)
    assert r.status_code == 202, r.text


async def alerts_of(client: httpx.AsyncClient, admin: dict[str, str], **params: Any) -> list:
    r = await client.get("/api/v1/alerts", params={"limit": 500, **params}, headers=admin)
    assert r.status_code == 200, r.text
    return r.json()["items"]


# --- per-agent credentials --------------------------------------------------------------------


async def test_agent_token_posts_only_for_its_own_sources(make_app, clean_state):
    async with make_app(**PROD) as (app, client):
        admin = await admin_of(app, client)
        agent = await new_agent(client, admin, "b1-gateway", ["cam-b1-*"])
        assert agent["token"].startswith("sag_") and agent["source_patterns"] == ["cam-b1-*"]
        token = bearer(agent["token"])

        r = await client.post("/api/v1/events", json=event("START", "cam-b1-7"), headers=token)
        assert r.status_code == 202, r.text

        r = await client.post("/api/v1/events", json=event("START", "cam-lobby"), headers=token)
        assert r.status_code == 403 and r.json()["code"] == "source_not_allowed"
        assert "cam-lobby" in r.json()["detail"] and "cam-b1-*" in r.json()["detail"]
        assert await stored_events(app, "cam-lobby") == 0

        # A source id that tries to forge text is named escaped, never raw.
        r = await client.post(
            "/api/v1/events", json=event("HEARTBEAT", "cam-<b>x</b>"), headers=token
        )
        assert r.status_code == 403, r.text
        assert "<b>" not in r.json()["detail"]

        mixed = [event("START", "cam-b1-1"), event("START", "cam-2f")]
        r = await client.post("/api/v1/events/batch", json={"events": mixed}, headers=token)
        assert r.status_code == 403 and r.json()["code"] == "source_not_allowed"
        assert await stored_events(app, "cam-b1-1") == 0 and await stored_events(app) == 1

        # Korean on request, like every other error.
        r = await client.post(
            "/api/v1/events",
            json=event("HEARTBEAT", "cam-lobby"),
            headers={**token, "Accept-Language": "ko"},
        )
        assert r.status_code == 403 and "소스" in r.json()["detail"]

        # Analyze with a source names the source too.
        r = await client.post(
            "/api/v1/behavior/analyze",
            json={"sequence": [[0.0] * 6] * 4, "source_id": "cam-lobby"},
            headers=token,
        )
        assert r.status_code == 403 and r.json()["code"] == "source_not_allowed"

        # The agent is a service principal: every service route works (reads included).
        assert (await client.get("/api/v1/events", headers=token)).status_code == 200
        listed = (await client.get("/api/v1/admin/agents", headers=admin)).json()["items"]
        assert [a["name"] for a in listed] == ["b1-gateway"]
        assert "token" not in listed[0] and listed[0]["last_seen_at"] is not None
        assert agent["token"] not in (await client.get("/api/v1/admin/agents", headers=admin)).text


async def test_rotate_and_delete_kill_the_old_token_at_once(make_app, clean_state):
    async with make_app(**PROD) as (app, client):
        admin = await admin_of(app, client)
        agent = await new_agent(client, admin, "b2-gateway", ["cam-b2-*"])
        old = bearer(agent["token"])
        r = await client.post("/api/v1/events", json=event("HEARTBEAT", "cam-b2-1"), headers=old)
        assert r.status_code == 202

        r = await client.post(f"/api/v1/admin/agents/{agent['id']}/rotate", headers=admin)
        assert r.status_code == 200 and r.json()["token"] != agent["token"]
        new = bearer(r.json()["token"])
        r = await client.post("/api/v1/events", json=event("HEARTBEAT", "cam-b2-1"), headers=old)
        assert r.status_code == 401
        r = await client.post("/api/v1/events", json=event("HEARTBEAT", "cam-b2-1"), headers=new)
        assert r.status_code == 202

        r = await client.delete(f"/api/v1/admin/agents/{agent['id']}", headers=admin)
        assert r.status_code == 204
        r = await client.post("/api/v1/events", json=event("HEARTBEAT", "cam-b2-1"), headers=new)
        assert r.status_code == 401
        r = await client.delete(f"/api/v1/admin/agents/{agent['id']}", headers=admin)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = await client.post(f"/api/v1/admin/agents/{uuid.uuid4()}/rotate", headers=admin)
        assert r.status_code == 404


async def test_a_second_process_stops_trusting_a_rotated_token_within_the_cache_ttl(
    make_app, clean_state
):
    prod = {**PROD, "security": {**PROD["security"], "auth_state_cache_secs": 0.2}}
    async with make_app(**prod) as (app, client), make_app(**prod) as (_, other):
        admin = await admin_of(app, client)
        agent = await new_agent(client, admin, "b3-gateway", ["cam-b3-*"])
        old = bearer(agent["token"])
        body = event("HEARTBEAT", "cam-b3-1")
        assert (await other.post("/api/v1/events", json=body, headers=old)).status_code == 202
        r = await client.post(f"/api/v1/admin/agents/{agent['id']}/rotate", headers=admin)
        assert r.status_code == 200
        import asyncio

        await asyncio.sleep(0.3)
        body = event("HEARTBEAT", "cam-b3-1")
        assert (await other.post("/api/v1/events", json=body, headers=old)).status_code == 401


async def test_agent_routes_are_admin_only_and_inputs_are_checked(make_app, clean_state):
    async with make_app(**PROD) as (app, client):
        admin = await admin_of(app, client)
        others = {
            "operator": await account(app, client, "operator"),
            "viewer": await account(app, client, "viewer"),
            "service": SERVICE,
        }
        agent = await new_agent(client, admin, "b4-gateway", ["cam-b4-*"])
        others["agent"] = bearer(agent["token"])
        calls = [
            ("POST", "/api/v1/admin/agents", {"name": "x", "source_patterns": ["cam-*"]}),
            ("GET", "/api/v1/admin/agents", None),
            ("POST", f"/api/v1/admin/agents/{agent['id']}/rotate", None),
            ("DELETE", f"/api/v1/admin/agents/{agent['id']}", None),
            ("PUT", "/api/v1/admin/sources/cam-1", {"watch_offline": True}),
            ("DELETE", "/api/v1/admin/sources/cam-1", None),
        ]
        for who, headers in others.items():
            h = {k: v for k, v in headers.items() if k != "X-Email"}
            for method, path, body in calls:
                r = await client.request(method, path, json=body, headers=h)
                assert r.status_code == 403, (who, method, path, r.status_code)
        assert (
            await client.post(
                "/api/v1/events", json=event("HEARTBEAT", "cam-b4-1"), headers=others["agent"]
            )
        ).status_code == 202

        bad = [
            {"name": "ok", "source_patterns": []},
            {"name": "ok", "source_patterns": ["cam b1*"]},
            {"name": "ok", "source_patterns": ["cam-[ab]*"]},
            {"name": "ok", "source_patterns": ["x" * 129]},
            {"name": "ok", "source_patterns": [f"cam-{i}" for i in range(21)]},
            {"name": "bad name\n", "source_patterns": ["cam-*"]},
        ]
        for body in bad:
            r = await client.post("/api/v1/admin/agents", json=body, headers=admin)
            assert r.status_code == 422, (body, r.text)
        r = await client.post(
            "/api/v1/admin/agents",
            json={"name": "b4-gateway", "source_patterns": ["cam-*"]},
            headers=admin,
        )
        assert r.status_code == 409 and r.json()["code"] == "conflict"


async def test_shared_token_still_posts_for_any_source(make_app, clean_state):
    async with make_app(**PROD) as (_, client):
        r = await client.post("/api/v1/events", json=event("START", "anything-1"), headers=SERVICE)
        assert r.status_code == 202


def test_production_start_warns_that_the_shared_token_speaks_for_any_source(settings_factory):
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        check_configuration(settings_factory(**PROD))
    finally:
        logger.remove(sink)
    assert any("ACCESS_TOKEN is shared" in line for line in lines), lines


# --- offline watching and the alert budgets ------------------------------------------------


@pytest.fixture
def hooks() -> Any:
    server = FakeHooks().start()
    yield server
    server.stop()


def slack_alerts(hooks: FakeHooks, **extra: Any) -> dict[str, Any]:
    return {
        "channels": "slack",
        "slack_webhook_url": hooks.slack_url,
        "http_timeout_secs": 2.0,
        "dispatcher_enabled": False,  # the test steps the monitor and the dispatcher itself
        **extra,
    }


async def test_random_source_heartbeats_raise_no_offline_alerts_and_a_real_episode_is_sent(
    make_app, clean_state, hooks
):
    # The attack's shape at a tenth of its size: 300 HEARTBEATs with random source ids through
    # the shared token (default ALERT_MAX_PER_HOUR=60 would have been spent five times over).
    async with make_app(
        **PROD, alerts=slack_alerts(hooks), events={"source_offline_after_secs": 1}
    ) as (app, client):
        admin = await admin_of(app, client)
        agent = await new_agent(client, admin, "b5-gateway", ["cam-b5-*"])
        r = await client.put(
            "/api/v1/admin/sources/cam-registered",
            json={"watch_offline": True, "name": "Lobby"},
            headers=admin,
        )
        assert r.status_code == 200 and r.json()["watch_offline"] is True
        now = datetime.now(UTC)
        for _ in range(3):
            batch = [
                event("HEARTBEAT", f"rnd-{uuid.uuid4().hex[:12]}", at=now) for _i in range(100)
            ]
            r = await client.post("/api/v1/events/batch", json={"events": batch}, headers=SERVICE)
            assert r.status_code == 202, r.text
        r = await client.post(
            "/api/v1/events",
            json=event("HEARTBEAT", "cam-b5-1", at=now),
            headers=bearer(agent["token"]),
        )
        assert r.status_code == 202
        r = await client.post(
            "/api/v1/events", json=event("HEARTBEAT", "cam-registered", at=now), headers=SERVICE
        )
        assert r.status_code == 202

        monitor = app.state.container.source_monitor()
        await monitor.check(utcnow())  # the first check only starts the settling window
        offline = await monitor.check(utcnow() + timedelta(seconds=5))
        assert sorted(a.source_id for a in offline) == ["cam-b5-1", "cam-registered"]

        # Unknown sources are listed (not watched), registered and covered ones are watched.
        r = await client.get("/api/v1/sources", params={"limit": 500}, headers=admin)
        items = r.json()["items"]
        assert len(items) == 302
        watched = {s["source_id"] for s in items if s["watched"]}
        assert watched == {"cam-b5-1", "cam-registered"}

        await abnormal(client, bearer(agent["token"]), "cam-b5-2", now)
        await app.state.container.alert_dispatcher().dispatch_once()
        [episode_alert] = await alerts_of(client, admin, kind="abnormal_episode")
        assert episode_alert["status"] == "sent", episode_alert
        assert any("cam-b5-2" in m["text"] for m in hooks.slack)

        # Unregistering stops the watching (the outage row already there stays).
        r = await client.delete("/api/v1/admin/sources/cam-registered", headers=admin)
        assert r.status_code == 204
        r = await client.delete("/api/v1/admin/sources/cam-registered", headers=admin)
        assert r.status_code == 404


async def test_one_noisy_source_cannot_suppress_another_sources_first_alert(
    make_app, clean_state, hooks
):
    # No incident grouping: each repeat is an alert of its own that would spend the budget.
    settings = slack_alerts(
        hooks,
        max_per_hour=3,
        max_per_source_per_hour=2,
        cooldown_secs=0,
        incident_group_window_secs=0,
    )
    async with make_app(**PROD, alerts=settings) as (app, client):
        admin = await admin_of(app, client)
        now = datetime.now(UTC)
        for i in range(4):
            await abnormal(client, SERVICE, "cam-noisy", now + timedelta(seconds=10 * i))
        noisy = await alerts_of(client, admin, source_id="cam-noisy")
        statuses = sorted(a["status"] for a in noisy)
        assert statuses == ["pending", "pending", "suppressed", "suppressed"], statuses
        per_source = [a for a in noisy if a["status"] == "suppressed"]
        assert all("ALERT_MAX_PER_SOURCE_PER_HOUR=2" in a["last_error"] for a in per_source)

        # Global budget: 3 sendable in the hour now; a source that already alerted is held…
        await abnormal(client, SERVICE, "cam-second", now)
        await abnormal(client, SERVICE, "cam-second", now + timedelta(seconds=10))
        second = await alerts_of(client, admin, source_id="cam-second")
        assert sorted(a["status"] for a in second) == ["pending", "suppressed"]
        [held] = [a for a in second if a["status"] == "suppressed"]
        assert "ALERT_MAX_PER_HOUR=3" in held["last_error"]

        # …but a source's first alert of the hour always goes out.
        await abnormal(client, SERVICE, "cam-quiet", now)
        [first] = await alerts_of(client, admin, source_id="cam-quiet")
        assert first["status"] == "pending"
        await app.state.container.alert_dispatcher().dispatch_once()
        [first] = await alerts_of(client, admin, source_id="cam-quiet")
        assert first["status"] == "sent"


# --- listing and metrics bounded -----------------------------------------------------------


async def test_sources_are_paged_and_metrics_series_are_bounded(make_app, clean_state):
    SOURCE_LAST_SEEN.clear()  # process-wide: series other apps of this session left behind
    async with make_app(**PROD, metrics_max_source_series=10) as (app, client):
        admin = await admin_of(app, client)
        now = datetime.now(UTC)
        batch = [event("HEARTBEAT", f"many-{i:03d}", at=now) for i in range(150)]
        r = await client.post("/api/v1/events/batch", json={"events": batch}, headers=SERVICE)
        assert r.status_code == 202

        seen: list[str] = []
        params: dict[str, Any] = {"limit": 40}
        pages = 0
        while True:
            r = await client.get("/api/v1/sources", params=params, headers=admin)
            assert r.status_code == 200, r.text
            body = r.json()
            assert len(body["items"]) <= 40 and body["offline_after_secs"] > 0
            seen += [s["source_id"] for s in body["items"]]
            pages += 1
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        assert pages == 4 and sorted(seen) == sorted({f"many-{i:03d}" for i in range(150)})
        default = (await client.get("/api/v1/sources", headers=admin)).json()
        assert len(default["items"]) == 100 and default["next_cursor"]
        r = await client.get("/api/v1/sources", params={"cursor": "nope"}, headers=admin)
        assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"
        r = await client.get("/api/v1/sources", params={"limit": 501}, headers=admin)
        assert r.status_code == 422

        text = (await client.get("/metrics", headers=SERVICE)).text
        series = re.findall(
            r'^sentinel_source_last_seen_timestamp_seconds\{source_id="([^"]*)"\}', text, flags=re.M
        )
        assert len(series) == 11 and "other" in series, series
