"""Alert delivery health in `/health` (issue 28 item 9) and the shift digest (item 10), against
the fake Slack/webhook receivers and the real SMTP server on loopback.

Health: `alerts` is `degraded` with a reason when a channel in ALERT_CHANNELS lacks its
settings, when none has them (plus one start-up WARNING), or when a channel failed its last 5
deliveries; the node stays ready, and anonymous production callers see the status only.
Digest: one per ALERT_DIGEST_AT slot across replicas, driven with a controlled clock.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from loguru import logger

from app.models.alert import AlertKind, SourceOutage
from app.services.alert_digest import DigestKeeper, digest_slots, slot_key
from tests import test_alert_channels as _channels
from tests.eventing import abnormal_episode, alerts, eventually
from tests.test_alert_channels import channel_settings
from tests.test_authz import PROD, SERVICE

# The fake Kakao/Slack/webhook/SMTP servers of the channel tests (fixtures).
kakao_server, hooks_server = _channels.kakao_server, _channels.hooks_server
smtp_server, servers = _channels.smtp_server, _channels.servers

KST = ZoneInfo("Asia/Seoul")


async def alerts_health(client, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await client.get("/health", headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


# --- delivery health ----------------------------------------------------------------------


async def test_slack_in_alert_channels_without_its_url_degrades_health_but_not_readiness(
    make_app, servers
):
    settings = channel_settings(servers, channels="slack,email", slack_webhook_url="")
    async with make_app(alerts=settings) as (_, client):
        body = await alerts_health(client)
        section = body["services"]["alerts"]
        assert section["status"] == "degraded" and body["status"] == "degraded"
        assert "slack" in section["reason"] and "SLACK_WEBHOOK_URL" in section["reason"]
        assert section["reasons"] == [
            "slack is in ALERT_CHANNELS but not configured: set SLACK_WEBHOOK_URL"
        ]
        assert section["channels"]["slack"]["configured"] is False
        assert section["channels"]["email"]["configured"] is True
        # Ops see it; load balancers keep the node.
        assert (await client.get("/health/ready")).status_code == 200
        assert (await client.head("/health")).status_code == 200


async def test_no_configured_channel_degrades_health_and_warns_once_at_start(
    make_app, servers, tmp_path
):
    log_file = tmp_path / "app.log"
    settings = channel_settings(
        servers,
        channels="kakao,webhook",
        kakao_access_token="",
        kakao_refresh_token="",
        webhook_url="",
    )
    log = {"file_path": str(log_file), "format": "json"}
    async with make_app(alerts=settings, log=log) as (_, client):
        section = (await alerts_health(client))["services"]["alerts"]
        await logger.complete()
    logger.remove()  # flush and close the file sink (enqueue=True)
    assert section["status"] == "degraded"
    assert section["reasons"][0].endswith("is configured: alerts would go nowhere")
    assert "KAKAO_ACCESS_TOKEN" in section["reason"] and "WEBHOOK_URL" in section["reason"]
    records = [json.loads(line)["record"] for line in log_file.read_text().splitlines() if line]
    warnings = [r for r in records if "alerts would go nowhere" in r["message"]]
    assert len(warnings) == 1, [r["message"] for r in records]
    [warning] = warnings
    assert warning["level"]["name"] == "WARNING"
    assert "KAKAO_ACCESS_TOKEN" in warning["message"]
    assert "WEBHOOK_URL and WEBHOOK_SECRET" in warning["message"]
    assert "hook-secret-for-tests" not in log_file.read_text()


async def test_all_channels_configured_is_healthy_with_no_reason_and_no_warning(
    make_app, servers, tmp_path
):
    log_file = tmp_path / "app.log"
    log = {"file_path": str(log_file), "format": "json"}
    async with make_app(alerts=channel_settings(servers), log=log) as (_, client):
        section = (await alerts_health(client))["services"]["alerts"]
        await logger.complete()
    logger.remove()
    assert section["status"] == "healthy", section
    assert "reason" not in section and "reasons" not in section
    assert all(c["recent_failures"] == 0 for c in section["channels"].values())
    assert "alert dispatcher started" in log_file.read_text()
    assert "not configured" not in log_file.read_text()


async def test_a_channel_failing_its_last_five_deliveries_degrades_health_until_one_succeeds(
    make_app, servers
):
    _kakao, hooks, _smtp = servers
    hooks.webhook_script = [400] * 5  # refused for good, five times
    settings = channel_settings(servers, channels="webhook,slack")
    async with make_app(alerts=settings) as (_, client):
        for i in range(4):
            await abnormal_episode(client, f"fail-{i}")

        async def failures(n: int):
            section = (await alerts_health(client))["services"]["alerts"]
            return section["channels"]["webhook"]["recent_failures"] == n and section

        section = await eventually(lambda: failures(4), timeout=20)
        assert section["status"] == "healthy", section  # four is not yet a pattern

        await abnormal_episode(client, "fail-4")
        section = await eventually(lambda: failures(5), timeout=20)
        assert section["status"] == "degraded"
        webhook = section["channels"]["webhook"]
        assert "HTTP 400" in webhook["last_error"]
        assert section["reasons"] == [
            f"webhook failed its last 5 deliveries: {webhook['last_error']}"
        ]
        assert section["channels"]["slack"]["recent_failures"] == 0

        await abnormal_episode(client, "works-again")
        section = await eventually(lambda: failures(0), timeout=20)
        assert section["status"] == "healthy" and "reason" not in section
        assert section["channels"]["webhook"]["last_error"] is None
    assert hooks.webhook_requests == 6 and len(hooks.webhook) == 1


async def test_anonymous_production_health_hides_the_reason(make_app, servers):
    settings = {
        **PROD,
        "alerts": {
            **PROD["alerts"],
            **channel_settings(
                servers,
                channels="slack",
                slack_webhook_url="",
                kakao_access_token="",  # stored Kakao tokens would need DATA_ENCRYPTION_KEY
                kakao_refresh_token="",
            ),
        },
    }
    async with make_app(**settings) as (_, client):
        body = await alerts_health(client)
        assert body["services"]["alerts"] == {"status": "degraded"}
        assert "SLACK" not in str(body) and "reason" not in str(body)
        detailed = (await alerts_health(client, SERVICE))["services"]["alerts"]
        assert "SLACK_WEBHOOK_URL" in detailed["reason"]


# --- shift digest -------------------------------------------------------------------------

SHIFTS = "06:00,14:00,22:00"


def test_digest_slot_is_the_latest_shift_change_at_or_before_now():
    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 12, day, hour, minute, tzinfo=KST)

    times = ["06:00", "14:00", "22:00"]
    assert digest_slots(at(7, 6, 0), times, "Asia/Seoul") == (at(7, 6), at(6, 22))
    assert digest_slots(at(7, 5, 59), times, "Asia/Seoul") == (at(6, 22), at(6, 14))
    assert digest_slots(at(7, 13, 0).astimezone(UTC), times, "Asia/Seoul") == (
        at(7, 6),
        at(6, 22),
    )
    assert digest_slots(at(7, 5), ["06:00"], "Asia/Seoul") == (at(6, 6), at(5, 6))
    assert digest_slots(at(7, 5), [], "Asia/Seoul") is None
    assert slot_key(at(7, 6)) == "2026-12-07T06:00+09:00"


def _day() -> date:
    """A controlled day in the past (deliveries written "then" are due at once)."""
    return (datetime.now(KST) - timedelta(days=3)).date()


def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=KST)


async def _record(app, kind: AlertKind, source_id: str, now: datetime, **extra: Any) -> None:
    container = app.state.container
    async with container.database().sessions.begin() as session:
        await container.alert_service().record(
            session, kind=kind, source_id=source_id, now=now, **extra
        )


async def _night_shift(app, client, day: date) -> None:
    """The night before the 06:00 change: cam-a three episodes (one incident, resolved),
    cam-b one (resolved, acknowledged), gw-1 offline since 05:00, cam-c one at 05:30 (open)."""
    for minute in (0, 1, 2):
        await _record(app, AlertKind.abnormal_episode, "cam-a", _at(day, 3, minute), label="fall")
    await _record(app, AlertKind.abnormal_episode, "cam-b", _at(day, 3, 5), label="fight")
    # Incident housekeeping: cam-a gets its "still happening" update, both resolve at 04:30.
    await app.state.container.alert_dispatcher().housekeep(_at(day, 4, 30))
    [cam_b] = (await client.get("/api/v1/incidents", params={"source_id": "cam-b"})).json()["items"]
    r = await client.post(f"/api/v1/incidents/{cam_b['id']}/ack")
    assert r.status_code == 200, r.text
    # As the source monitor records an outage: the alert and the outage row together.
    container = app.state.container
    async with container.database().sessions.begin() as session:
        offline = await container.alert_service().record(
            session, kind=AlertKind.source_offline, source_id="gw-1", now=_at(day, 5)
        )
        session.add(
            SourceOutage(
                source_id="gw-1",
                offline_since=_at(day, 4, 55),
                alert_id=offline.id,
                created_at=_at(day, 5),
            )
        )
    await _record(app, AlertKind.abnormal_episode, "cam-c", _at(day, 5, 30), label="fall")


def _digest_messages(servers, day: date) -> dict[str, list[str]]:
    _kakao, hooks, smtp = servers
    stamp = day.isoformat()
    slack = [m["text"] for m in hooks.slack if "교대 요약" in m["text"] and stamp in m["text"]]
    bodies = [m.get_content() for m in smtp.messages]
    email = [b for b in bodies if "Shift digest" in b and stamp in b]
    return {"slack": slack, "email": email}


async def test_one_digest_per_shift_change_across_replicas_with_the_period_counts(
    make_app, servers
):
    day = _day()
    # Dispatcher loops off: only the controlled clock below runs housekeeping and delivery.
    settings = channel_settings(
        servers, channels="slack,email", digest_at=SHIFTS, dispatcher_enabled=False
    )
    async with (
        make_app(alerts=settings) as (app_a, client),
        make_app(alerts=settings) as (
            app_b,
            _,
        ),
    ):
        await _night_shift(app_a, client, day)
        keeper_a: DigestKeeper = app_a.state.container.digest_keeper()
        keeper_b: DigestKeeper = app_b.state.container.digest_keeper()
        six = _at(day, 6, 0, 30)
        # Two replicas at the same moment, then again: one digest, one message per channel.
        created = await asyncio.gather(keeper_a.run(six), keeper_b.run(six))
        assert sorted(created) == [0, 2]
        assert await keeper_a.run(six) == 0 and await keeper_b.run(six + timedelta(minutes=5)) == 0
        # 07:30 is past the hour of grace: nothing for 06:00 (nor for anything else).
        assert await keeper_a.run(_at(day, 7, 30)) == 0
        # The 14:00 change gives the second digest; 22:00 seen only at 23:30 gives none.
        assert await keeper_b.run(_at(day, 14, 0, 10)) == 2
        assert await keeper_a.run(_at(day, 23, 30)) == 0

        dispatcher = app_a.state.container.alert_dispatcher()

        async def delivered():
            await dispatcher.dispatch_once()
            got = _digest_messages(servers, day)
            return len(got["slack"]) >= 2 and len(got["email"]) >= 2 and got

        await eventually(delivered, timeout=20)
        await dispatcher.dispatch_once()
        await app_b.state.container.alert_dispatcher().dispatch_once()
        items = [a for a in await alerts(client, kind="digest") if day.isoformat() in a["text"]]
    assert len(items) == 2 and all(a["source_id"] == "digest" for a in items)
    assert all(a["status"] == "sent" for a in items)
    assert {d["channel"] for d in items[0]["deliveries"]} == {"slack", "email"}
    messages = _digest_messages(servers, day)
    assert len(messages["slack"]) == 2 and len(messages["email"]) == 2
    first, second = sorted(messages["slack"], key=lambda t: "06:00:00" not in t)
    # 06:00: four incidents opened since 22:00 (cam-a, cam-b, gw-1, cam-c), two resolved, three
    # nobody took (cam-b was acknowledged); gw-1 offline; cam-a the busiest source.
    assert f"{day.isoformat()} 06:00:00" in first
    assert "새 인시던트 4건, 해결 2건, 미확인 3건" in first
    assert "4 incident(s) opened, 2 resolved, 3 unacknowledged" in first
    assert "연결 끊긴 소스: gw-1" in first and "Offline sources: gw-1" in first
    assert "Top sources: cam-a (3), cam-b (1), cam-c (1), gw-1 (1)" in first
    # 14:00: nothing new, the two still-open incidents still unacknowledged.
    assert f"{day.isoformat()} 14:00:00" in second
    assert "0 incident(s) opened, 0 resolved, 2 unacknowledged" in second
    assert "많이 발생한 소스: 없음" in second and "Top sources: none" in second
    assert any("Shift digest" in m and "미확인 3건" in m for m in messages["email"])


async def test_digest_is_not_written_without_alert_digest_at(make_app, servers):
    settings = channel_settings(servers, channels="slack", dispatcher_enabled=False)
    async with make_app(alerts=settings) as (app, client):
        keeper = app.state.container.digest_keeper()
        assert await keeper.run(_at(_day(), 6, 0, 30)) == 0
        assert await alerts(client, kind="digest") == []


async def test_empty_alert_channels_records_only_and_says_so(make_app, clean_state):
    """Issue 26 point 1: the default is "record only", said in /health, the alert and the log,
    not a Kakao channel that cannot work."""
    async with make_app(alerts={"dispatcher_enabled": True}) as (_, client):
        section = (await client.get("/health")).json()["services"]["alerts"]
        assert section["status"] == "disabled", section
        assert section["reason"].startswith("ALERT_CHANNELS is empty: alerts are recorded only")
        assert not any(c["enabled"] for c in section["channels"].values())
        r = await client.get("/health")
        assert r.json()["status"] == "healthy"  # a choice, not a fault
        from tests.eventing import abnormal_episode, alerts

        await abnormal_episode(client, "cam-record-only")
        [alert] = await alerts(client, source_id="cam-record-only")
        assert alert["status"] == "undeliverable" and alert["deliveries"] == []
        assert alert["last_error"].startswith("ALERT_CHANNELS is empty")
