"""Event-grounded answers: closed episodes are summarised into their own collection and
questions about a source are answered from them, with the episodes as sources."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.core.errors import Unavailable
from tests.conftest import wait_for_job
from tests.eventing import ABNORMAL, NORMAL, event, post
from tests.fakes.fixtures import reset_rag_state
from tests.fakes.llm import Reply

PRIMARY = "gemini-2.5-flash"
NIGHT = datetime(2026, 11, 24, 23, 10, 0, tzinfo=UTC)
QUESTION = "What happened at camera-3 last night?"


async def episode(
    client: httpx.AsyncClient, source_id: str, probs: dict[str, float], at: datetime = NIGHT
) -> str:
    """START → PROBS → END for one source; returns the closed episode's id."""
    await post(client, event("START", source_id, at=at))
    await post(client, event("PROBS", source_id, at=at, seconds=30, probs=probs))
    end = await post(client, event("END", source_id, at=at, seconds=60, probs=probs))
    return end["episode_id"]


async def indexed(app: Any) -> None:
    """Wait for the background summaries of everything ingested so far."""
    await app.state.container.event_knowledge().join()


async def ask(client: httpx.AsyncClient, question: str = QUESTION, **extra: Any) -> dict:
    r = await client.post("/api/v1/rag/ask", json={"question": question, **extra})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
async def plain_client(client, app) -> httpx.AsyncClient:
    await reset_rag_state(app)
    return client


async def test_question_naming_a_source_is_answered_locally_from_its_episodes(plain_client, app):
    wanted = await episode(plain_client, "camera-3", ABNORMAL)
    await episode(plain_client, "camera-9", NORMAL)
    await indexed(app)

    body = await ask(plain_client)

    assert body["provider"] == "local" and body["degraded"] is True
    first = body["sources"][0]
    assert first["doc_id"] == f"episode:{wanted}"
    assert first["title"] == "Episode at camera-3 2026-11-24 23:10 UTC"
    assert "abnormal" in first["chunk"] and "fall" in first["chunk"]
    # The question names camera-3: the other source's episodes are filtered out.
    assert all("camera-9" not in s["title"] for s in body["sources"])
    assert "camera-3" in body["answer"] and "[1]" in body["answer"]


async def test_question_without_a_known_source_still_finds_episodes_by_meaning(plain_client, app):
    wanted = await episode(plain_client, "lobby-east", ABNORMAL)
    await indexed(app)

    body = await ask(plain_client, "Was any abnormal fall behaviour seen at night?")

    assert [s["doc_id"] for s in body["sources"]] == [f"episode:{wanted}"]


async def test_episode_summary_is_in_the_model_prompt_and_the_sources(
    llm_client, llm_app, fake_llm
):
    app, _ = llm_app
    wanted = await episode(llm_client, "camera-3", ABNORMAL)
    await indexed(app)
    fake_llm.default[PRIMARY] = Reply.ok("A fall was detected at camera-3 [1].")

    body = await ask(llm_client)

    assert body["provider"] == "gemini" and body["answer"].startswith("A fall was detected")
    assert body["sources"][0]["doc_id"] == f"episode:{wanted}"
    sent = json.dumps(fake_llm.requests[-1]["body"])
    assert "[1] Episode at camera-3 2026-11-24 23:10 UTC" in sent
    assert "2026-11-24T23:10:00+00:00" in sent and "Tuesday 24 November 2026" in sent
    assert "judged abnormal: top label fall" in sent
    # The alert written with the close is part of the summary.
    assert "An alert for camera-3 was raised; its status is pending" in sent


async def test_reindex_rebuilds_the_event_summaries_from_the_database(plain_client, app):
    wanted = await episode(plain_client, "camera-3", ABNORMAL)
    await indexed(app)
    await app.state.container.vector_store().clear_events()  # e.g. a lost Chroma directory

    r = await plain_client.post("/api/v1/knowledge/reindex")

    assert r.status_code == 202, r.text
    job = await wait_for_job(plain_client, r.json()["id"])
    assert job["state"] == "succeeded" and job["result"]["episodes"] == 1
    body = await ask(plain_client)
    assert body["sources"][0]["doc_id"] == f"episode:{wanted}"


async def test_a_failing_event_index_never_fails_the_ingest(plain_client, app, monkeypatch):
    calls: list[int] = []

    async def broken(items: Any) -> None:
        calls.append(len(items))
        raise Unavailable("chroma is down", code="vector_store_unavailable")

    monkeypatch.setattr(app.state.container.vector_store(), "upsert_events", broken)
    closed = await episode(plain_client, "camera-3", ABNORMAL)
    await indexed(app)

    assert calls == [1]  # the summary was attempted, failed, and the ingest was already 202
    r = await plain_client.get(f"/api/v1/episodes/{closed}")
    assert r.status_code == 200 and r.json()["status"] == "closed"


async def test_summaries_still_write_after_another_process_rebuilt_the_collection(
    plain_client, app, make_app
):
    """A reindex elsewhere drops and recreates the events collection (same name): this process's
    handle is stale, and its next write must go to the new collection, not be lost."""
    here = app.state.container.vector_store()
    await here.upsert_events([("episode:a", "summary a", {"source_id": "cam-a"})])
    async with make_app() as (other_app, _):
        other = other_app.state.container.vector_store()
        await other.clear_events()
        await other.upsert_events([("episode:b", "summary b", {"source_id": "cam-b"})])

    await here.upsert_events([("episode:c", "summary c", {"source_id": "cam-c"})])

    assert sorted(await here.event_ids()) == ["episode:b", "episode:c"]
