"""Agents retry: repeated event ids cost about what new ones cost and change nothing.

A repeat inside one commit group, a repeat of an event another process stored, and a repeat
racing its original (two processes sharing the database) all answer the original's id and
episode; episodes count each event once; and no repeat sends a group down the one-by-one path.
"""

from __future__ import annotations

import asyncio

from loguru import logger

from tests.eventing import event, post

PROBS = {"walking": 0.7, "running": 0.3}


def _fallbacks() -> tuple[list[str], int]:
    """A sink that records the one-by-one fallback's log lines."""
    seen: list[str] = []
    sink = logger.add(
        lambda m: seen.append(str(m)) if "writing them one by one" in str(m) else None,
        level="INFO",
    )
    return seen, sink


async def test_repeats_inside_one_group_are_answered_with_the_original_and_counted_once(client):
    start = await post(client, event("START", "cam-retry"))
    bodies = [event("PROBS", "cam-retry", seconds=1 + i, probs=PROBS) for i in range(20)]
    seen, sink = _fallbacks()
    try:
        # Each body sent twice at once: the pairs land in the same commit groups.
        responses = await asyncio.gather(
            *(client.post("/api/v1/events", json=b) for b in bodies + bodies)
        )
        # …then the whole round replayed, as an agent does after a reconnect.
        replay = await asyncio.gather(*(client.post("/api/v1/events", json=b) for b in bodies))
    finally:
        logger.remove(sink)
    assert {r.status_code for r in responses + replay} == {202}
    by_id: dict[str, list[dict]] = {}
    for r in responses + replay:
        by_id.setdefault(r.json()["id"], []).append(r.json())
    assert set(by_id) == {b["event_id"] for b in bodies}
    for answers in by_id.values():
        assert [a["duplicate"] for a in answers].count(False) == 1
        assert {a["episode_id"] for a in answers} == {start["episode_id"]}
    ep = (await client.get(f"/api/v1/episodes/{start['episode_id']}")).json()
    assert (ep["event_count"], ep["probs_count"]) == (21, 20)
    assert seen == []  # repeats never send a group down the one-by-one path


async def test_a_repeated_end_never_closes_twice_and_a_batch_mixes_new_and_repeated(client):
    start = await post(client, event("START", "cam-end"))
    end = event("END", "cam-end", seconds=5, probs=PROBS)
    first = await post(client, end)
    again = await post(client, end)
    assert again == {**first, "duplicate": True}
    ep = (await client.get(f"/api/v1/episodes/{start['episode_id']}")).json()
    assert ep["status"] == "closed" and ep["event_count"] == 2
    # A new START after the repeated END opens a second episode, not a third.
    fresh = event("START", "cam-end", seconds=10)
    r = await client.post("/api/v1/events/batch", json={"events": [end, fresh, end, fresh]})
    assert r.status_code == 202, r.text
    results = r.json()["results"]
    assert [x["duplicate"] for x in results] == [True, False, True, True]
    assert results[0]["episode_id"] == start["episode_id"]
    episodes = (await client.get("/api/v1/episodes", params={"source_id": "cam-end"})).json()
    assert len(episodes["items"]) == 2


async def test_a_repeat_stored_by_another_process_and_one_racing_its_original(make_app):
    """Two apps on one database stand for two `sentinel serve` processes."""
    async with make_app() as (_, a), make_app() as (_, b):
        start = await post(a, event("START", "cam-two"))
        probs = event("PROBS", "cam-two", seconds=1, probs=PROBS)
        stored = await post(a, probs)
        repeated = await post(b, probs)  # B never saw it: the database did
        assert repeated == {**stored, "duplicate": True}

        # The same new events sent to both at once: each stored once, both told the original.
        racing = [event("PROBS", "cam-two", seconds=2 + i, probs=PROBS) for i in range(10)]
        seen, sink = _fallbacks()
        try:
            answers = await asyncio.gather(
                *(c.post("/api/v1/events", json=body) for body in racing for c in (a, b))
            )
        finally:
            logger.remove(sink)
        assert {r.status_code for r in answers} == {202}
        for i, body in enumerate(racing):
            pair = [answers[2 * i].json(), answers[2 * i + 1].json()]
            assert {p["id"] for p in pair} == {body["event_id"]}
            assert sorted(p["duplicate"] for p in pair) == [False, True]
            assert {p["episode_id"] for p in pair} == {start["episode_id"]}
        ep = (await a.get(f"/api/v1/episodes/{start['episode_id']}")).json()
        assert (ep["event_count"], ep["probs_count"]) == (12, 11)
        # A race settles by retrying the group once, not by writing events one by one.
        assert seen == []


async def test_a_batch_racing_its_own_retry_answers_both_with_one_copy(make_app):
    async with make_app() as (_, a), make_app() as (_, b):
        batch = [event("PROBS", "cam-batch-race", seconds=i, probs=PROBS) for i in range(20)]
        answers = await asyncio.gather(
            *(c.post("/api/v1/events/batch", json={"events": batch}) for c in (a, b, a, b))
        )
        assert [r.status_code for r in answers] == [202] * 4, [r.text for r in answers]
        accepted = [r.json()["accepted"] for r in answers]
        assert sum(accepted) == 20  # every event stored exactly once, whoever won
        for r in answers:
            assert [x["id"] for x in r.json()["results"]] == [e["event_id"] for e in batch]
        stored = (await a.get("/api/v1/events", params={"source_id": "cam-batch-race"})).json()
        assert len(stored["items"]) == 20


async def test_a_twin_under_another_source_settles_without_the_one_by_one_path(make_app):
    """Events of one source queue on its row lock; a twin naming another source can pass the
    lookup at the same moment: the loser's group retries once and answers with the original."""
    async with make_app() as (_, a), make_app() as (_, b):
        seen, sink = _fallbacks()
        try:
            for i in range(10):
                body = event("PROBS", "cam-twin-a", seconds=i, probs=PROBS)
                twin = {**body, "source_id": "cam-twin-b"}
                ra, rb = await asyncio.gather(
                    a.post("/api/v1/events", json=body), b.post("/api/v1/events", json=twin)
                )
                assert (ra.status_code, rb.status_code) == (202, 202)
                pair = [ra.json(), rb.json()]
                assert {p["id"] for p in pair} == {body["event_id"]}
                assert sorted(p["duplicate"] for p in pair) == [False, True]
        finally:
            logger.remove(sink)
        stored = [
            e
            for source in ("cam-twin-a", "cam-twin-b")
            for e in (await a.get("/api/v1/events", params={"source_id": source})).json()["items"]
        ]
        assert len(stored) == 10
        assert seen == []
