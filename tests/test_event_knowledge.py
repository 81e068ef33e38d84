"""Event-grounded answers: closed episodes are summarised into their own collection and
questions about a source are answered from them, with the episodes as sources."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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
    # 23:10 UTC is 08:10 the next morning in ALERT_TIMEZONE (Asia/Seoul).
    assert first["title"] == "Episode at camera-3, 2026-11-25 08:10 KST"
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
    assert "[1] Episode at camera-3, 2026-11-25 08:10 KST" in sent
    assert "Wed 25 Nov 2026, 8:10 AM KST (in the morning)" in sent and "UTC" not in sent
    assert "judged abnormal: top label fall" in sent
    # The alert written with the close is part of the summary.
    # (No ALERT_CHANNELS in this app: the alert is recorded only.)
    assert "An alert for camera-3 was raised; its status is undeliverable" in sent


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


# -- documents first, events when asked (issue: episode text answered document questions) ------

DUTY = (
    "당직 규정",
    "야간 당직은 오후 6시에 시작하여 다음 날 오전 9시에 끝납니다. 당직자는 시작 10분 전까지 "
    "상황실에 도착합니다.",
)
FALL_PROCEDURE = (
    "Fall alert procedure",
    "When a fall alert fires, call the resident's room within 2 minutes. "
    "If nobody answers, send the on-call nurse to the room.",
)
AFTERNOON = datetime(2026, 11, 24, 5, 30, 0, tzinfo=UTC)  # 14:30 in Seoul


async def documents_and_episodes(client: httpx.AsyncClient, app: Any) -> dict[str, list[str]]:
    """Two documents and ten closed episodes over four sources; returns source -> episode ids."""
    for title, content in (DUTY, FALL_PROCEDURE):
        r = await client.post("/api/v1/knowledge/docs", json={"title": title, "content": content})
        assert r.status_code == 201, r.text
    # cam-lobby-1 has one episode (at 14:30 KST); the others three each, 7 hours apart.
    sources = ["cam-lobby-1", *["cam-3", "cam-b1-parking", "cam-gym-2"] * 3]
    episodes: dict[str, list[str]] = {}
    for number, source in enumerate(sources):
        probs = ABNORMAL if number % 2 else NORMAL
        at = AFTERNOON - timedelta(hours=7 * number)
        episodes.setdefault(source, []).append(await episode(client, source, probs, at))
    await indexed(app)
    return episodes


async def test_document_questions_get_only_document_sources_among_many_episodes(plain_client, app):
    await documents_and_episodes(plain_client, app)

    duty = await ask(plain_client, "야간 당직은 몇 시에 시작하나요?")
    procedure = await ask(plain_client, "What does a fall alert require us to do?")
    lunch = await ask(plain_client, "오늘 점심 메뉴는 뭐야?")

    assert duty["sources"][0]["title"] == "당직 규정"
    assert procedure["sources"][0]["title"] == "Fall alert procedure"
    for body in (duty, procedure, lunch):
        assert not [s for s in body["sources"] if s["doc_id"].startswith("episode:")], body


async def test_korean_event_question_gets_the_cameras_episode_first_in_korean(plain_client, app):
    episodes = await documents_and_episodes(plain_client, app)

    body = await ask(plain_client, "cam-lobby-1에서 무슨 일이 있었나요?")

    first = body["sources"][0]
    assert first["doc_id"] == f"episode:{episodes['cam-lobby-1'][0]}"
    assert first["title"] == "cam-lobby-1 에피소드 · 2026년 11월 24일 (화) 오후 2:30 KST"
    assert first["chunk"].startswith(
        "cam-lobby-1 카메라의 에피소드: 2026년 11월 24일 (화) 오후 2:30 KST부터 오후 2:31 KST까지."
    )
    assert "'정상'으로 판정" in first["chunk"] and "알림은 발생하지 않았습니다" in first["chunk"]
    assert "UTC" not in first["chunk"] and "judged" not in first["chunk"]
    # The local answer quotes the episode whole: its time, its verdict and its alert.
    assert "오후 2:30 KST" in body["answer"] and "'정상'으로 판정" in body["answer"]
    assert "알림은 발생하지 않았습니다" in body["answer"]
    # Every episode source is that camera's; the documents may follow.
    assert all(
        s["title"].startswith("cam-lobby-1 ")
        for s in body["sources"]
        if s["doc_id"].startswith("episode:")
    )


async def test_english_event_question_gets_the_cameras_episode_first_in_english(plain_client, app):
    episodes = await documents_and_episodes(plain_client, app)

    body = await ask(plain_client, "What happened at camera cam-3 last night?")

    first = body["sources"][0]
    assert first["doc_id"] in {f"episode:{e}" for e in episodes["cam-3"]}
    assert first["title"].startswith("Episode at cam-3, 2026-11-2") and first["title"].endswith(
        " KST"
    )
    assert " KST (in the " in first["chunk"] or " KST (at night)" in first["chunk"]
    assert "At cam-3 the behaviour was judged" in first["chunk"] and "UTC" not in first["chunk"]
    # An abnormal episode's alert reads in Korean for a Korean question about the same camera.
    korean = await ask(plain_client, "cam-3에서 경보가 울린 에피소드 알려줘")
    assert any("알림이 발생했고" in s["chunk"] for s in korean["sources"])
