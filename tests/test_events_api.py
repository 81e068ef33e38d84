"""Event ingest, idempotency, validation, reading, sources, the JSONL log and compat routes."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.core.errors import ValidationFailed
from app.models.base import utcnow
from app.models.event import Source
from app.schemas.events import EventIn
from tests.eventing import ABNORMAL, T0, event, post


async def test_event_is_committed_before_202_and_listed(client):
    body = event("START", "cam-a", metadata={"fps": 15})
    r = await client.post("/api/v1/events", json=body)
    assert r.status_code == 202
    data = r.json()
    assert data["id"] == body["event_id"] and data["duplicate"] is False
    assert data["episode_id"]
    listed = (await client.get("/api/v1/events", params={"source_id": "cam-a"})).json()
    assert [e["id"] for e in listed["items"]] == [body["event_id"]]
    assert listed["items"][0]["metadata"] == {"fps": 15}
    assert listed["items"][0]["episode_id"] == data["episode_id"]


async def test_repeated_event_id_returns_original_and_changes_nothing(client):
    await post(client, event("START", "cam-dup"))
    end = event("END", "cam-dup", seconds=5, probs=ABNORMAL)
    first = await post(client, end)
    again = await post(client, {**end, "probs": {"normal": 1.0}})
    assert again == {**first, "duplicate": True}
    events = (await client.get("/api/v1/events", params={"source_id": "cam-dup"})).json()["items"]
    assert len(events) == 2
    episodes = (await client.get("/api/v1/episodes", params={"source_id": "cam-dup"})).json()
    assert len(episodes["items"]) == 1
    assert len((await client.get("/api/v1/alerts")).json()["items"]) == 1


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"event_type": "JUMP"}, "event_type"),
        ({"timestamp": "2026-11-25T01:00:00"}, "timezone"),
        ({"timestamp": None}, "timestamp"),
        ({"probs": {"fall": 1.5}}, "between 0 and 1"),
        ({"probs": {"fall": -0.1}}, "between 0 and 1"),
        ({"source_id": ""}, "source_id"),
        ({"sequence": [[1.0, 2.0], [1.0]]}, "frame 1 has 1 features"),
        ({"metadata": {"blob": "x" * 20_000}}, "EVENT_METADATA_MAX_BYTES"),
    ],
)
async def test_invalid_event_is_422_with_a_clear_message_and_nothing_stored(client, patch, needle):
    body = {**event("PROBS", "cam-bad"), **patch}
    r = await client.post("/api/v1/events", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert needle.lower() in r.text.lower()
    assert (await client.get("/api/v1/events")).json()["items"] == []
    assert (await client.get("/api/v1/sources")).json()["items"] == []


async def test_batch_is_all_or_nothing_and_returns_per_event_results(client):
    good = [event("START", "cam-b"), event("PROBS", "cam-b", seconds=1, probs=ABNORMAL)]
    bad = event("PROBS", "cam-b", seconds=2, probs={"fall": 2})
    r = await client.post("/api/v1/events/batch", json={"events": [*good, bad]})
    assert r.status_code == 422
    assert "events.2" in r.text or "events" in r.json()["detail"]
    assert (await client.get("/api/v1/events")).json()["items"] == []

    r = await client.post("/api/v1/events/batch", json={"events": [*good, good[0]]})
    assert r.status_code == 202, r.text
    data = r.json()
    assert [x["duplicate"] for x in data["results"]] == [False, False, True]
    assert data["accepted"] == 2 and data["duplicates"] == 1
    assert data["results"][0]["episode_id"] == data["results"][1]["episode_id"]


async def test_one_group_touches_every_source_and_finds_each_open_episode(client):
    """A group with several sources: one upsert for the sources, one query for the episodes."""
    starts = [event("START", f"cam-g{i}") for i in range(3)]
    r = await client.post("/api/v1/events/batch", json={"events": starts})
    assert r.status_code == 202, r.text
    episodes = [x["episode_id"] for x in r.json()["results"]]
    mixed = [
        event("PROBS", "cam-g2", seconds=1, probs=ABNORMAL),
        event("HEARTBEAT", "cam-g0", seconds=1),
        event("PROBS", "cam-g0", seconds=2, probs=ABNORMAL),
        event("HEARTBEAT", "cam-g9", seconds=1),
    ]
    r = await client.post("/api/v1/events/batch", json={"events": mixed})
    assert r.status_code == 202, r.text
    results = r.json()["results"]
    assert results[0]["episode_id"] == episodes[2] and results[2]["episode_id"] == episodes[0]
    sources = {s["source_id"]: s for s in (await client.get("/api/v1/sources")).json()["items"]}
    assert set(sources) == {"cam-g0", "cam-g1", "cam-g2", "cam-g9"}
    assert sources["cam-g0"]["last_event_type"] == "PROBS"  # the group's last event of cam-g0
    assert sources["cam-g1"]["last_event_type"] == "START"
    assert sources["cam-g9"]["last_event_type"] == "HEARTBEAT"


async def test_batch_over_the_limit_is_422(make_app, clean_state):
    async with make_app(events={"batch_max": 2}) as (_, client):
        r = await client.post(
            "/api/v1/events/batch", json={"events": [event("PROBS") for _ in range(3)]}
        )
        assert r.status_code == 422
        assert "EVENT_BATCH_MAX" in r.json()["detail"]


async def test_heartbeat_marks_source_online_without_storing_an_event(client):
    r = await client.post("/api/v1/events", json=event("HEARTBEAT", "cam-hb"))
    assert r.status_code == 202 and r.json()["episode_id"] is None
    sources = (await client.get("/api/v1/sources")).json()
    [source] = sources["items"]
    assert source["source_id"] == "cam-hb" and source["online"] is True
    assert source["last_event_type"] == "HEARTBEAT"
    assert (await client.get("/api/v1/events")).json()["items"] == []


async def test_source_goes_offline_after_the_configured_silence(client, app):
    await post(client, event("HEARTBEAT", "cam-quiet"))
    old = utcnow() - timedelta(
        seconds=app.state.container.settings().events.source_offline_after_secs + 5
    )
    async with app.state.container.database().sessions.begin() as session:
        await session.execute(update(Source).where(Source.id == "cam-quiet").values(last_seen=old))
    [source] = (await client.get("/api/v1/sources")).json()["items"]
    assert source["online"] is False and source["seconds_since_seen"] > 60


async def test_recent_returns_newest_first_per_source(client, redis_url):
    ids = []
    for i in range(3):
        ids.append((await post(client, event("PROBS", "cam-r1", seconds=i, probs=ABNORMAL)))["id"])
    other = (await post(client, event("PROBS", "cam-r2")))["id"]
    r = (await client.get("/api/v1/events/recent", params={"limit": 10})).json()
    assert [e["id"] for e in r["items"]] == [other, *reversed(ids)]
    assert r["served_from"] == ("redis" if redis_url else "database")
    r = (
        await client.get("/api/v1/events/recent", params={"source_id": "cam-r1", "limit": 2})
    ).json()
    assert [e["id"] for e in r["items"]] == list(reversed(ids))[:2]


async def test_recent_is_capped_at_event_recent_max(make_app, clean_state, redis_url):
    async with make_app(events={"recent_max": 3}) as (_, client):
        for i in range(5):
            await post(client, event("PROBS", "cam-cap", seconds=i))
        r = (await client.get("/api/v1/events/recent", params={"limit": 10})).json()
        if redis_url:
            assert r["served_from"] == "redis" and len(r["items"]) == 3
        else:
            assert r["served_from"] == "database" and len(r["items"]) == 5


async def test_recent_lists_take_a_large_push_and_trim_to_the_cap(make_app, clean_state, redis_url):
    """One push of more values than the script hands LPUSH at once (1,000), into lists past
    their cap: each list keeps the newest `recent_max`, newest first; a push under the slack
    leaves the lists as long as they grew."""
    async with make_app(events={"recent_max": 50}) as (app, _):
        cache = app.state.container.recent_events()
        pushed = [("cam-a" if i % 2 else "cam-b", f'{{"n":{i}}}') for i in range(2500)]
        if not redis_url:  # no Redis configured: nothing to push to, readers use the database
            assert not await cache.push_encoded(pushed)
            return
        assert await cache.push_encoded(pushed)
        newest_all = await cache.read(None, 100)
        assert newest_all == [{"n": i} for i in range(2499, 2449, -1)]
        assert await cache.read("cam-a", 100) == [{"n": i} for i in range(2499, 2399, -2)]
        assert await cache.push_encoded([("cam-a", '{"n":2500}')])
        client = app.state.container.redis().client()
        # 51: one past the cap, under the slack, so not trimmed yet.
        assert await client.llen(cache._keys("cam-a")) == 51
        assert (await cache.read("cam-a", 1)) == [{"n": 2500}]


async def test_recent_falls_back_to_the_database_when_redis_is_down(client, app, monkeypatch):
    stored = await post(client, event("PROBS", "cam-fb"))
    # The app's view of Redis as down (the background probe must not flip it back mid-test);
    # tests/test_faults.py stops a real redis-server for the end-to-end version.
    monkeypatch.setattr(app.state.container.redis(), "client", lambda: None)
    r = (await client.get("/api/v1/events/recent")).json()
    assert r["served_from"] == "database"
    assert [e["id"] for e in r["items"]] == [stored["id"]]


async def test_list_events_filters_and_paginates_with_a_cursor(client):
    ids = [(await post(client, event("PROBS", "cam-p", seconds=i)))["id"] for i in range(5)]
    await post(client, event("START", "cam-p", seconds=10))
    seen, cursor = [], None
    while True:
        params = {"source_id": "cam-p", "event_type": "PROBS", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/events", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    window = {
        "since": (T0 + timedelta(seconds=1)).isoformat(),
        "until": (T0 + timedelta(seconds=3)).isoformat(),
    }
    page = (await client.get("/api/v1/events", params=window)).json()
    assert [e["id"] for e in page["items"]] == [ids[2], ids[1]]


async def test_bad_cursor_and_naive_filter_times_are_422(client):
    r = await client.get("/api/v1/events", params={"cursor": "not-a-cursor"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"
    r = await client.get("/api/v1/events", params={"since": "2026-11-25T01:00:00"})
    assert r.status_code == 422 and "time zone" in r.json()["detail"]


async def test_acknowledged_events_survive_a_restart(make_app, clean_state):
    async with make_app() as (_, client):
        acked = [
            (await post(client, event("PROBS", "cam-restart", seconds=i)))["id"] for i in range(5)
        ]
    async with make_app() as (_, client):
        page = (await client.get("/api/v1/events", params={"source_id": "cam-restart"})).json()
    assert sorted(e["id"] for e in page["items"]) == sorted(acked)


async def test_event_log_is_jsonl_and_rotates_by_size(make_app, clean_state, tmp_path):
    path = tmp_path / "log" / "events.jsonl"
    async with make_app(events={"log_path": str(path), "log_rotation": "1 KB"}) as (_, client):
        ids = [
            (await post(client, event("PROBS", "cam-log", seconds=i, probs=ABNORMAL)))["id"]
            for i in range(12)
        ]
    files = sorted(path.parent.glob("events*.jsonl"))
    assert len(files) >= 2, files
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sorted(x["id"] for x in lines) == sorted(ids)
    assert all(x["source_id"] == "cam-log" and x["probs"] == ABNORMAL for x in lines)


async def test_compat_payload_and_recent_keep_the_original_shapes(client):
    r = await client.post(
        "/event/payload",
        json={
            "event_type": "end",
            "ts": 1764032400.5,
            "probs": ABNORMAL,
            "camera_id": "cam-old",
            "clip": "a.mp4",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok" and r.json()["episode_id"]
    recent = (await client.get("/event/recent")).json()
    assert recent["count"] == 1
    [item] = recent["events"]
    assert item["source_id"] == "cam-old" and item["event_type"] == "END"
    assert item["metadata"] == {"extra": {"clip": "a.mp4"}}
    bad = await client.post("/event/payload", json={"event_type": "NOPE"})
    assert bad.status_code == 422
    schema = (await client.get("/openapi.json")).json()
    assert "/event/payload" not in schema["paths"] and "/api/v1/events" in schema["paths"]


async def test_unknown_episode_is_404(client):
    r = await client.get(f"/api/v1/episodes/{uuid.uuid4()}")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_overlapping_commit_groups_lose_no_episode_update(client, app):
    # Many concurrent PROBS on a few open episodes: the groups overlap on PostgreSQL (the next
    # starts while the previous commits) and must still add up exactly.
    service = app.state.container.event_service()
    in_flight = peak = 0
    write_group = service._write_group

    async def counting(group, ready):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await write_group(group, ready)
        finally:
            in_flight -= 1

    service._write_group = counting
    sources = [f"cam-overlap-{i}" for i in range(4)]
    starts = [await post(client, event("START", s)) for s in sources]
    bodies = [
        event("PROBS", sources[i % 4], seconds=1 + i / 1000, probs={"normal": 0.5, "fall": 0.5})
        for i in range(240)
    ]
    responses = await asyncio.gather(*(client.post("/api/v1/events", json=b) for b in bodies))
    assert {r.status_code for r in responses} == {202}
    for start in starts:
        r = await client.get(f"/api/v1/episodes/{start['episode_id']}")
        ep = r.json()
        assert (ep["event_count"], ep["probs_count"], ep["status"]) == (61, 60, "open")
    if app.state.container.database().dialect == "postgresql":
        assert peak == 2  # the overlap this test is about did happen
    else:
        assert peak == 1  # SQLite has one writer


async def test_concurrent_repeats_of_one_event_id_store_it_once(client):
    body = event("START", "cam-race")
    responses = await asyncio.gather(*(client.post("/api/v1/events", json=body) for _ in range(12)))
    assert {r.status_code for r in responses} == {202}
    data = [r.json() for r in responses]
    assert sum(not d["duplicate"] for d in data) == 1
    assert {d["id"] for d in data} == {body["event_id"]}
    assert len({d["episode_id"] for d in data}) == 1
    assert len((await client.get("/api/v1/events")).json()["items"]) == 1


async def test_a_failing_event_in_a_commit_group_fails_alone(make_app, clean_state):
    class RejectingAnalyzer:
        normal_labels = frozenset({"standing"})
        threshold = 0.5

        async def analyze(self, sequence):
            raise ValidationFailed("frames have 1 features; the model expects 6")

    async with make_app() as (app, client):
        app.state.container.episode_decider().analyzer = RejectingAnalyzer()
        bad = event("END", "cam-bad-seq", sequence=[[1.0], [2.0]])
        good = [event("START", f"cam-ok-{i}") for i in range(8)]
        responses = await asyncio.gather(
            *(client.post("/api/v1/events", json=b) for b in [*good[:4], bad, *good[4:]])
        )
        codes = [r.status_code for r in responses]
        assert codes == [202] * 4 + [422] + [202] * 4
        assert "sequence: frames have 1 features" in responses[4].json()["detail"]
        stored = (await client.get("/api/v1/events", params={"limit": 50})).json()["items"]
        assert sorted(e["id"] for e in stored) == sorted(b["event_id"] for b in good)


FAST = {"content-type": "application/json"}  # the ingest route's one-pass validation
USUAL = {"content-type": "application/json; charset=utf-8"}  # FastAPI's own body handling


@pytest.mark.parametrize(
    "raw",
    [
        '{"source_id": "cam-f", "event_type": "probs", "timestamp": "2026-11-25T01:00:00+09:00",'
        ' "probs": {"낙상": 0.25, "walking": 1}, "metadata": {"n": 18446744073709551616}}',
        '{"source_id": "cam-f", "event_type": "START", "timestamp": "2026-11-25T01:00:00Z",'
        ' "sequence": [[1, 2.5], [3, 4]], "metadata": {"a": {"a": 1, "a": 2}}}',
    ],
)
async def test_fast_ingest_stores_what_fastapis_own_parsing_stores(client, raw, monkeypatch):
    # Count one-pass validations (the real method still runs) to see which way each body went.
    one_pass = []
    validate_json = EventIn.model_validate_json.__func__

    def counted(cls, data, **kwargs):
        one_pass.append(cls)
        return validate_json(cls, data, **kwargs)

    monkeypatch.setattr(EventIn, "model_validate_json", classmethod(counted))
    stored = []
    for headers in (FAST, USUAL):
        body = json.loads(raw)
        body["event_id"] = str(uuid.uuid4())
        text = raw.replace('{"source_id"', f'{{"event_id": "{body["event_id"]}", "source_id"', 1)
        r = await client.post("/api/v1/events", content=text.encode(), headers=headers)
        assert r.status_code == 202, r.text
        assert r.json()["id"] == body["event_id"]
        items = (await client.get("/api/v1/events", params={"source_id": "cam-f"})).json()["items"]
        item = next(i for i in items if i["id"] == body["event_id"])
        stored.append(
            {k: v for k, v in item.items() if k not in ("id", "received_at", "episode_id")}
        )
    assert one_pass == [EventIn]  # the first body took the one-pass way, the second did not
    assert stored[0] == stored[1]
    # A 64-bit-overflowing integer stays an integer (orjson would have made it a float).
    assert stored[0]["metadata"] in ({"n": 18446744073709551616}, {"a": {"a": 2}})


@pytest.mark.parametrize(
    "raw",
    [
        '{"source_id": "cam-f", "event_type": "PROBS", "timestamp": "2026-11-25T01:00:00+09:00",'
        ' "probs": {"fall": NaN}}',
        '{"source_id": "cam-f", "event_type": "JUMP", "timestamp": "2026-11-25T01:00:00+09:00"}',
        '{"source_id": "cam-f", "event_type": "PROBS", "timestamp": "2026-11-25T01:00:00"}',
        '{"source_id": "cam-f", "event_type": "PROBS", "timestamp": "2026-11-25T01:00:00Z", "probs": {"fall": "high"}}',
        '{"source_id": "cam-f", "event_type": "PROBS",',
        '["not", "an", "object"]',
    ],
)
async def test_fast_ingest_refuses_in_fastapis_words(client, raw):
    answers = []
    for headers in (FAST, USUAL):
        r = await client.post("/api/v1/events", content=raw.encode(), headers=headers)
        assert r.status_code == 422, r.text
        answers.append({k: v for k, v in r.json().items() if k != "request_id"})
    assert answers[0] == answers[1]
    assert (await client.get("/api/v1/events")).json()["items"] == []
