"""Schedules (issue 28 item 4) and maintenance windows (item 5): the schedules API and its
4xx/409 answers, `is_active` across midnight in Asia/Seoul and across a DST change, routes
active only at night, recurring silences, and the reminder and summary of a one-off silence
written exactly once by two keepers racing, with a controlled clock throughout."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import tests.test_alert_channels as wire
from app.models.alert import Alert, AlertDelivery, AlertKind, AlertSchedule, AlertStatus
from app.services.alert_schedules import ScheduleBook
from app.services.maintenance import MaintenanceKeeper

# The fake Slack/webhook/Kakao/SMTP servers on loopback, shared with the channel tests.
kakao_server, hooks_server, smtp_server = wire.kakao_server, wire.hooks_server, wire.smtp_server
servers = wire.servers

KST = ZoneInfo("Asia/Seoul")
NIGHT = {"name": "night", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
         "times": [{"start": "22:00", "end": "06:00"}],
         "exceptions": [{"date": "2026-12-25", "active": False}]}  # fmt: skip
DAY = {"name": "day", "weekdays": ["mon", "tue", "wed", "thu", "fri"],
       "times": [{"start": "09:00", "end": "18:00"}],
       "exceptions": [{"date": "2026-12-26", "active": True}]}  # fmt: skip


def kst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KST)


def book(*specs: dict[str, Any], timezone: str = "Asia/Seoul") -> ScheduleBook:
    return ScheduleBook([AlertSchedule(**spec) for spec in specs], timezone)


# --- is_active ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-12-07 21:59", False),  # a Monday, just before the night shift
        ("2026-12-07 22:00", True),
        ("2026-12-07 23:59", True),
        ("2026-12-08 00:00", True),  # after midnight: Monday's range goes on
        ("2026-12-08 05:59", True),
        ("2026-12-08 06:00", False),
        ("2026-12-08 12:00", False),
        # 25 Dec is an inactive exception: the night that began on the 24th runs to its end…
        ("2026-12-25 05:59", True),
        # …the one that would begin on the 25th does not, nor its part after midnight.
        ("2026-12-25 22:30", False),
        ("2026-12-26 02:00", False),
        ("2026-12-26 22:00", True),
    ],
)
def test_night_schedule_across_midnight_in_seoul(local: str, expected: bool):
    night = book(NIGHT)
    assert night.is_active("night", kst(local)) is expected
    # The same instant given in UTC answers the same.
    assert night.is_active("night", kst(local).astimezone(UTC)) is expected


def test_active_exception_weekdays_and_unknown_names():
    day = book(DAY)
    assert day.is_active("day", kst("2026-12-07 09:00"))  # Monday
    assert not day.is_active("day", kst("2026-12-07 18:00"))
    assert not day.is_active("day", kst("2026-12-05 12:00"))  # a Saturday
    # 26 Dec (a Saturday) is an active exception: the whole local date, 00:00 to 24:00.
    assert day.is_active("day", kst("2026-12-26 00:00"))
    assert day.is_active("day", kst("2026-12-26 23:59"))
    assert not day.is_active("day", kst("2026-12-27 00:00"))
    assert not day.is_active("nope", kst("2026-12-07 12:00"))
    assert not ScheduleBook.empty().is_active("day", kst("2026-12-07 12:00"))
    whole = book(
        {"name": "all", "weekdays": ["wed"], "times": [{"start": "08:00", "end": "08:00"}]}
    )
    assert whole.is_active("all", kst("2026-12-10 07:59"))  # Wednesday 08:00 + 24 h
    assert not whole.is_active("all", kst("2026-12-10 08:00"))


def test_local_wall_clock_follows_a_dst_change():
    spec = {"name": "early", "weekdays": ["sun"], "times": [{"start": "01:00", "end": "04:00"}]}
    berlin = book(spec, timezone="Europe/Berlin")
    # 29 Mar 2026: clocks in Berlin jump from 02:00 CET to 03:00 CEST (01:00 UTC).
    assert berlin.is_active("early", datetime(2026, 3, 29, 0, 30, tzinfo=UTC))  # 01:30 CET
    assert berlin.is_active("early", datetime(2026, 3, 29, 1, 30, tzinfo=UTC))  # 03:30 CEST
    assert not berlin.is_active("early", datetime(2026, 3, 29, 2, 0, tzinfo=UTC))  # 04:00 CEST
    # The same UTC hour in winter is 03:00 local: still in range, 04:00 UTC is not.
    assert berlin.is_active("early", datetime(2026, 1, 4, 2, 0, tzinfo=UTC))
    assert not berlin.is_active("early", datetime(2026, 1, 4, 3, 0, tzinfo=UTC))


# --- the API --------------------------------------------------------------------------------


async def test_schedules_are_replaced_whole_and_listed(client):
    r = await client.get("/api/v1/alerts/schedules")
    assert r.status_code == 200, r.text
    assert r.json() == {"timezone": "Asia/Seoul", "schedules": []}
    weekend = {"name": "weekend", "weekdays": ["SUN", "sat"]}
    r = await client.put("/api/v1/alerts/schedules", json={"schedules": [NIGHT, DAY, weekend]})
    assert r.status_code == 200, r.text
    listed = (await client.get("/api/v1/alerts/schedules")).json()["schedules"]
    assert [s["name"] for s in listed] == ["day", "night", "weekend"]
    night = listed[1]
    assert night["times"] == [{"start": "22:00", "end": "06:00"}]
    assert night["exceptions"] == [{"date": "2026-12-25", "active": False}]
    assert listed[2]["weekdays"] == ["sat", "sun"] and listed[2]["times"] == []
    assert all(isinstance(s["active"], bool) for s in listed)

    r = await client.put("/api/v1/alerts/schedules", json={"schedules": [DAY]})
    assert r.status_code == 200, r.text
    assert [s["name"] for s in r.json()["schedules"]] == ["day"]


def _with(**change: Any) -> dict[str, Any]:
    return {"schedules": [{**NIGHT, **change}]}


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (_with(weekdays=["mon", "funday"]), ["funday", "mon, tue, wed, thu, fri, sat, sun"]),
        (_with(times=[{"start": "24:00", "end": "06:00"}]), ["HH:MM", "24:00"]),
        (_with(times=[{"start": "7:00", "end": "08:00"}]), ["HH:MM", "7:00"]),
        (_with(times=[{"start": "07:00"}]), ["end"]),
        (_with(times=[{"start": "01:00", "end": "02:00"}] * 11), ["times", "10"]),
        (_with(name="Night"), ["name"]),
        (_with(name="x" * 65), ["name"]),
        (_with(exceptions=[{"date": "2026-02-30", "active": True}]), ["date"]),
        (_with(exceptions=[{"date": "2026-12-25", "active": True}] * 2), ["2026-12-25"]),
        ({"schedules": [NIGHT, NIGHT]}, ["night", "more than once"]),
        ({"schedules": [{**NIGHT, "name": f"s{i}"} for i in range(51)]}, ["schedules", "50"]),
        (_with(colour="blue"), ["colour"]),
        ({}, ["schedules"]),
    ],
)
async def test_bad_schedules_are_refused_with_a_clear_422(client, body, fragments):
    r = await client.put("/api/v1/alerts/schedules", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    for fragment in fragments:
        assert fragment in r.text, (fragment, r.text)
    assert (await client.get("/api/v1/alerts/schedules")).json()["schedules"] == []


async def test_a_schedule_in_use_cannot_be_removed_and_the_409_names_its_users(client):
    assert (
        await client.put("/api/v1/alerts/schedules", json={"schedules": [NIGHT, DAY]})
    ).is_success
    rules = [
        {"source": "cam-*", "channels": ["*"], "active_during": ["night"]},
        {"source": "door-*", "channels": ["*"], "inactive_during": ["day"]},
    ]
    r = await client.put("/api/v1/alerts/routes", json={"rules": rules})
    assert r.status_code == 200, r.text
    r = await client.post("/api/v1/silences", json={"source_id": "yard-*", "schedule": "day"})
    assert r.status_code == 201, r.text
    silence = r.json()

    r = await client.put("/api/v1/alerts/schedules", json={"schedules": []})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "conflict"
    assert "night by routing rule 1 (cam-*)" in body["detail"]
    assert "day by routing rule 2 (door-*)" in body["detail"]
    assert f"day by silence {silence['id']} (yard-*)" in body["detail"]
    r = await client.put(
        "/api/v1/alerts/schedules", json={"schedules": []}, headers={"Accept-Language": "ko"}
    )
    assert r.status_code == 409 and "아직 사용 중인 일정" in r.json()["detail"]
    listed = (await client.get("/api/v1/alerts/schedules")).json()["schedules"]
    assert [s["name"] for s in listed] == ["day", "night"]  # nothing changed

    # Once the users are gone, the schedules may go.
    assert (await client.put("/api/v1/alerts/routes", json={"rules": []})).is_success
    assert (await client.delete(f"/api/v1/silences/{silence['id']}")).status_code == 204
    r = await client.put("/api/v1/alerts/schedules", json={"schedules": []})
    assert r.status_code == 200, r.text
    # A route naming an unknown schedule is refused.
    r = await client.put("/api/v1/alerts/routes", json={"rules": rules})
    assert r.status_code == 422 and "night" in r.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"source_id": "cam-*", "schedule": "night", "until": "2099-01-01T00:00:00Z"}, "not both"),
        ({"source_id": "cam-*"}, "give until"),
        ({"source_id": "cam-*", "schedule": "nowhere"}, "unknown schedule(s) nowhere"),
        ({"source_id": "cam-*", "schedule": "Bad Name"}, "schedule"),
    ],
)
async def test_bad_recurring_silences_are_refused_with_a_clear_422(client, body, fragment):
    assert (await client.put("/api/v1/alerts/schedules", json={"schedules": [NIGHT]})).is_success
    r = await client.post("/api/v1/silences", json=body)
    assert r.status_code == 422, r.text
    assert fragment in r.text


# --- routing and recurring silences with a controlled clock ----------------------------------


async def _record(app, source: str, now: datetime, kind: AlertKind = AlertKind.abnormal_episode):
    container = app.state.container
    async with container.database().sessions.begin() as session:
        alert = await container.alert_service().record(
            session, kind=kind, source_id=source, now=now.astimezone(UTC), budgeted=False
        )
    return alert.id


async def _deliveries(app, alert_id) -> tuple[str, list[str]]:
    async with app.state.container.database().sessions() as session:
        alert = await session.get(Alert, alert_id)
        stmt = select(AlertDelivery.channel).where(AlertDelivery.alert_id == alert_id)
        channels = sorted((await session.execute(stmt)).scalars())
    assert alert is not None
    return alert.status, channels


async def test_a_night_route_and_a_day_route_across_midnight_in_seoul(make_app, clean_state):
    async with make_app(alerts={"channels": "slack,email", "cooldown_secs": 0}) as (app, client):
        r = await client.put("/api/v1/alerts/schedules", json={"schedules": [NIGHT, DAY]})
        assert r.status_code == 200, r.text
        rules = [
            {"source": "cam-*", "channels": ["slack"], "active_during": ["night"]},
            {"source": "cam-*", "channels": ["email"], "active_during": ["day"]},
        ]
        assert (await client.put("/api/v1/alerts/routes", json={"rules": rules})).is_success
        routes = app.state.container.alert_routes()
        async with app.state.container.database().sessions() as session:
            table = await routes.table(session)
        kind = AlertKind.abnormal_episode.value
        assert table.channels_for(kind, "cam-1", kst("2026-12-08 23:30")) == ["slack"]
        assert table.channels_for(kind, "cam-1", kst("2026-12-09 05:59")) == ["slack"]
        assert table.channels_for(kind, "cam-1", kst("2026-12-09 06:00")) == []
        assert table.channels_for(kind, "cam-1", kst("2026-12-09 12:00")) == ["email"]
        assert table.channels_for(kind, "gate-1", kst("2026-12-09 12:00")) == []

        night = await _record(app, "cam-1", kst("2026-12-08 23:30"))
        noon = await _record(app, "cam-2", kst("2026-12-09 12:00"))
        evening = await _record(app, "cam-3", kst("2026-12-09 19:00"))
        assert await _deliveries(app, night) == ("pending", ["slack"])
        assert await _deliveries(app, noon) == ("pending", ["email"])
        status, channels = await _deliveries(app, evening)
        assert status == AlertStatus.undeliverable and channels == []


async def test_a_recurring_silence_quiets_a_source_only_while_its_schedule_runs(
    make_app, clean_state
):
    async with make_app(alerts={"channels": "slack", "cooldown_secs": 0}) as (app, client):
        assert (
            await client.put("/api/v1/alerts/schedules", json={"schedules": [NIGHT]})
        ).is_success
        r = await client.post(
            "/api/v1/silences",
            json={"source_id": "cam-yard-*", "schedule": "night", "reason": "야간 조명 점검"},
        )
        assert r.status_code == 201, r.text
        silence = r.json()
        assert silence["schedule"] == "night" and silence["until"] is None and silence["active"]
        listed = (await client.get("/api/v1/silences")).json()["items"]
        assert [s["id"] for s in listed] == [silence["id"]]

        after = datetime.now(UTC) + timedelta(days=1)  # the silence started just now
        night = kst(f"{after.astimezone(KST).date()} 23:30")
        day = kst(f"{after.astimezone(KST).date()} 12:00")
        quiet = await _record(app, "cam-yard-1", night)
        loud = await _record(app, "cam-yard-1", day)
        other = await _record(app, "cam-gate-1", night)
        assert await _deliveries(app, quiet) == ("silenced", [])
        assert await _deliveries(app, loud) == ("pending", ["slack"])
        assert await _deliveries(app, other) == ("pending", ["slack"])
        [silenced] = [a for a in await _alerts(client, "silenced")]
        assert f"silenced by {silence['id']} while schedule night runs" in silenced["last_error"]

        # Ended: it stays listed as expired and no longer quiets the night.
        assert (await client.delete(f"/api/v1/silences/{silence['id']}")).status_code == 204
        assert (await client.get("/api/v1/silences")).json()["items"] == []
        assert await _deliveries(app, await _record(app, "cam-yard-1", night)) == (
            "pending",
            ["slack"],
        )


async def _alerts(client, status: str | None = None, kind: str | None = None) -> list[dict]:
    params = {k: v for k, v in {"status": status, "kind": kind}.items() if v}
    r = await client.get("/api/v1/alerts", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


# --- maintenance: reminder and summary, once each ---------------------------------------------


def _keepers(app, n: int = 2) -> list[MaintenanceKeeper]:
    c = app.state.container
    return [
        MaintenanceKeeper(c.database(), c.settings().alerts, c.alert_service()) for _ in range(n)
    ]


async def _race(app, now: datetime) -> int:
    return sum(await asyncio.gather(*(k.run(now) for k in _keepers(app))))


async def _maintenance_alerts(app, kind: AlertKind) -> list[Alert]:
    async with app.state.container.database().sessions() as session:
        stmt = select(Alert).where(Alert.kind == kind.value).order_by(Alert.created_at)
        return list((await session.execute(stmt)).scalars())


async def test_one_off_silence_gets_one_reminder_and_one_summary_with_counts(make_app, clean_state):
    settings = {"channels": "slack,email", "cooldown_secs": 0, "maintenance_reminder_secs": 900}
    async with make_app(alerts=settings) as (app, client):
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
        r = await client.post(
            "/api/v1/silences",
            json={"source_id": "cam-maint-*", "until": until.isoformat(), "reason": "렌즈 청소"},
        )
        assert r.status_code == 201, r.text
        silence = r.json()
        # What it holds back: two behaviour alerts and an outage, plus one from another source.
        soon = datetime.now(UTC) + timedelta(minutes=1)
        for _ in range(2):
            await _record(app, "cam-maint-1", soon)
        await _record(app, "cam-maint-2", soon, AlertKind.source_offline)
        assert await _deliveries(app, await _record(app, "cam-open", soon)) == (
            "pending",
            ["email", "slack"],
        )

        # Not yet: 16 minutes before the end.
        assert await _race(app, until - timedelta(minutes=16)) == 0
        assert await _maintenance_alerts(app, AlertKind.maintenance_reminder) == []
        # Two keepers racing at 14 minutes before the end: one reminder, sent (not silenced).
        assert await _race(app, until - timedelta(minutes=14)) == 1
        assert await _race(app, until - timedelta(minutes=5)) == 0
        [reminder] = await _maintenance_alerts(app, AlertKind.maintenance_reminder)
        assert reminder.source_id == "cam-maint-*" and reminder.occurred_at == until
        assert await _deliveries(app, reminder.id) == ("pending", ["email", "slack"])
        ends = until.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S KST")
        assert "Maintenance ends soon: cam-maint" in reminder.text and ends in reminder.text
        assert await _maintenance_alerts(app, AlertKind.maintenance_summary) == []

        # Ended: two keepers racing write one summary with the counts per kind.
        assert await _race(app, until + timedelta(seconds=1)) == 1
        assert await _race(app, until + timedelta(minutes=5)) == 0
        [summary] = await _maintenance_alerts(app, AlertKind.maintenance_summary)
        assert summary.data == {
            "silence_id": silence["id"],
            "counts": {"abnormal_episode": 2, "source_offline": 1},
        }
        assert summary.occurred_at == until
        assert await _deliveries(app, summary.id) == ("pending", ["email", "slack"])
        assert "Maintenance over: cam-maint" in summary.text


async def test_delete_ends_a_silence_early_it_stays_listed_and_gets_its_summary(
    make_app, clean_state
):
    settings = {"channels": "slack", "cooldown_secs": 0, "maintenance_reminder_secs": 900}
    async with make_app(alerts=settings) as (app, client):
        until = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
        r = await client.post("/api/v1/silences", json={"source_id": "cam-9", "until": until})
        assert r.status_code == 201, r.text
        silence = r.json()
        await _record(app, "cam-9", datetime.now(UTC))

        r = await client.delete(f"/api/v1/silences/{silence['id']}")
        assert r.status_code == 204
        r = await client.delete(f"/api/v1/silences/{silence['id']}")
        assert r.status_code == 404 and "already ended" in r.json()["detail"]
        r = await client.delete("/api/v1/silences/00000000-0000-0000-0000-000000000000")
        assert r.status_code == 404 and "No silence with id" in r.json()["detail"]
        assert (await client.get("/api/v1/silences")).json()["items"] == []
        listed = (await client.get("/api/v1/silences", params={"include_expired": True})).json()
        [ended] = listed["items"]
        assert ended["id"] == silence["id"] and ended["active"] is False
        assert datetime.fromisoformat(ended["until"]) <= datetime.now(UTC)

        # Alerts flow again, and the next keeper pass writes its summary (no reminder).
        assert await _deliveries(app, await _record(app, "cam-9", datetime.now(UTC))) == (
            "pending",
            ["slack"],
        )
        assert await _race(app, datetime.now(UTC)) == 1
        [summary] = await _maintenance_alerts(app, AlertKind.maintenance_summary)
        assert summary.data == {"silence_id": silence["id"], "counts": {"abnormal_episode": 1}}
        assert await _maintenance_alerts(app, AlertKind.maintenance_reminder) == []


async def test_a_short_empty_silence_gets_no_summary_and_reminders_can_be_off(
    make_app, clean_state
):
    settings = {"channels": "slack", "maintenance_reminder_secs": 0}
    async with make_app(alerts=settings) as (app, client):
        until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        r = await client.post("/api/v1/silences", json={"source_id": "cam-x", "until": until})
        assert r.status_code == 201
        assert (await client.delete(f"/api/v1/silences/{r.json()['id']}")).status_code == 204
        # Held back nothing and lasted under a minute: no summary; reminders are off.
        assert await _race(app, datetime.now(UTC) + timedelta(minutes=1)) == 0
        assert await _maintenance_alerts(app, AlertKind.maintenance_summary) == []
        r = await client.post("/api/v1/silences", json={"source_id": "cam-y", "until": until})
        end = datetime.fromisoformat(until)
        assert await _race(app, end - timedelta(minutes=1)) == 0
        assert await _maintenance_alerts(app, AlertKind.maintenance_reminder) == []
        # A full hour that held nothing back still says the window is over ("none").
        assert await _race(app, end + timedelta(seconds=1)) == 1
        [summary] = await _maintenance_alerts(app, AlertKind.maintenance_summary)
        assert summary.data["counts"] == {} and summary.source_id == "cam-y"


async def test_the_running_dispatcher_sends_the_summary_of_an_ended_silence_once(make_app, servers):
    settings = wire.channel_settings(servers, channels="slack,email", monitor_interval_secs=0.05)
    async with make_app(alerts=settings) as (_, client):
        until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        r = await client.post("/api/v1/silences", json={"source_id": "cam-m1", "until": until})
        assert r.status_code == 201, r.text
        await wire.abnormal_episode(client, "cam-m1")
        await wire.eventually(lambda: _alerts(client, "silenced"), timeout=10)
        assert (await client.delete(f"/api/v1/silences/{r.json()['id']}")).status_code == 204
        await wire.wait_alerts(client, "sent", 1, kind="maintenance_summary")
        await asyncio.sleep(0.5)  # a repeat from the next housekeeping passes would show here
    assert wire.counts(servers) == {"kakao": 0, "slack": 1, "webhook": 0, "email": 1}
    _kakao, hooks, _smtp = servers
    text = hooks.slack[0]["text"]
    assert "점검(무음) 기간이 끝났습니다" in text and "Held back: abnormal behaviour 1" in text
