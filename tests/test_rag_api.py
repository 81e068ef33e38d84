"""The knowledge assistant through the HTTP API: asks, fallbacks, local answers, streaming,
caching, PII masking, conversations, the stats dashboard and health."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for_job
from tests.fakes.fixtures import reset_rag_state
from tests.fakes.llm import Reply

PRIMARY, LITE, GPT = "gemini-2.5-flash", "gemini-2.5-flash-lite", "gpt-4o-mini"
FALL = (
    "Fall alert procedure. When a fall alert fires, call the resident within two minutes. "
    "If nobody answers, send the on-call nurse to the room."
)
FIRE = "Fire drill. The fire drill happens every first Monday at 10:00 in the east wing."
QUESTION = "What do we do when a fall alert fires?"


async def add_docs(client: httpx.AsyncClient, *docs: tuple[str, str]) -> list[str]:
    ids = []
    for title, content in docs:
        r = await client.post("/api/v1/knowledge/docs", json={"title": title, "content": content})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def ask(client: httpx.AsyncClient, question: str = QUESTION, **extra: Any) -> dict:
    r = await client.post("/api/v1/rag/ask", json={"question": question, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if name:
            events.append((name, json.loads("\n".join(data))))
    return events


async def ask_stream(client: httpx.AsyncClient, question: str = QUESTION) -> list[tuple[str, dict]]:
    r = await client.post("/api/v1/rag/ask/stream", json={"question": question})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return parse_sse(r.text)


# -- without keys ------------------------------------------------------------------------


@pytest.fixture
async def plain_client(client, app) -> httpx.AsyncClient:
    await reset_rag_state(app)
    return client


async def test_without_keys_the_answer_is_extracted_locally_with_sources_and_a_notice(
    plain_client,
):
    await add_docs(plain_client, ("Fall", FALL), ("Fire", FIRE))
    body = await ask(plain_client, top_k=2)
    assert body["degraded"] is True and body["provider"] == "local"
    assert "call the resident within two minutes" in body["answer"]
    assert body["sources"][0]["title"] == "Fall" and len(body["sources"]) == 2
    assert "GEMINI_API_KEY" in body["notice"] and "API 키" in body["notice"]
    assert body["attempts"] == [] and body["cached"] is False


async def test_without_documents_the_answer_says_nothing_was_found(plain_client):
    body = await ask(plain_client)
    assert body["found"] is False and body["sources"] == [] and body["attempts"] == []
    assert body["provider"] == "local" and body["model"] == "not_found"
    assert "nothing that answers" in body["answer"]


async def test_blank_question_is_a_422(plain_client):
    r = await plain_client.post("/api/v1/rag/ask", json={"question": "   "})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = await plain_client.post("/api/v1/rag/ask", json={"question": "x", "top_k": 0})
    assert r.status_code == 422


async def test_health_reports_llm_disabled_without_keys(plain_client):
    services = (await plain_client.get("/health")).json()["services"]
    assert services["llm"]["status"] == "disabled" and services["llm"]["chain"] == []


# -- against the fake provider -----------------------------------------------------------


async def test_primary_quota_exhausted_makes_the_next_model_answer(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.script(PRIMARY, Reply.quota_per_day(retry_delay="37s"))
    fake_llm.default[LITE] = Reply.ok("Call within two minutes [1].")

    body = await ask(llm_client)

    assert (body["provider"], body["model"]) == ("gemini", LITE)
    assert body["answer"] == "Call within two minutes [1]." and not body["degraded"]
    assert [(a["model"], a["outcome"]) for a in body["attempts"]] == [
        (PRIMARY, "quota_exhausted"),
        (LITE, "ok"),
    ]
    assert body["usage"] == {"tokens_in": 42, "tokens_out": 5}
    # The prompt carried the retrieved passage, numbered for citations.
    sent = json.dumps(fake_llm.requests[-1]["body"])
    assert "[1] Fall" in sent and "call the resident within two minutes" in sent


async def test_exhausted_model_gets_no_calls_during_cooldown(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.script(PRIMARY, Reply.quota_per_day())
    await ask(llm_client)
    for question in ("Who goes to the room?", "How fast must we call?"):
        body = await ask(llm_client, question)
        assert body["model"] == LITE
        assert body["attempts"][0]["outcome"] == "skipped_cooling"
    assert fake_llm.calls[PRIMARY] == 1


async def test_exhausted_model_gets_no_calls_from_a_second_app_sharing_redis(
    llm_client, fake_llm, make_llm_app, shared_redis_url
):
    # Two apps (two processes' worth of state) on one Redis, whatever the suite's own mode.
    async with (
        make_llm_app(redis_url=shared_redis_url) as (_, first),
        make_llm_app(redis_url=shared_redis_url) as (_, other),
    ):
        await add_docs(first, ("Fall", FALL))
        fake_llm.script(PRIMARY, Reply.quota_per_day())
        await ask(first)
        body = await ask(other, "Who goes to the room?")
        assert body["model"] == LITE and body["attempts"][0]["outcome"] == "skipped_cooling"
        stats = (await other.get("/api/v1/admin/llm/stats")).json()
    assert fake_llm.calls[PRIMARY] == 1
    primary = next(m for m in stats["models"] if m["model"] == PRIMARY)
    assert primary["cooldown_remaining_secs"] > 590 and primary["quota_exhausted"] == 1
    assert primary["cooldown"]["reason"] == "quota_exhausted"


async def test_every_model_exhausted_gives_a_local_answer_with_the_cooldown_end(
    llm_client, fake_llm
):
    await add_docs(llm_client, ("Fall", FALL))
    for model in (PRIMARY, LITE):
        fake_llm.default[model] = Reply.quota_per_day()
    fake_llm.default[GPT] = Reply("insufficient_quota")

    body = await ask(llm_client)

    assert body["degraded"] and body["provider"] == "local"
    assert "call the resident within two minutes" in body["answer"]
    assert "UTC" in body["notice"] and "(in 10 min)" in body["notice"]
    assert "분 후" in body["notice"]
    assert [a["outcome"] for a in body["attempts"]] == ["quota_exhausted"] * 3
    # Next ask: nothing is called at all while everything cools down.
    before = sum(fake_llm.calls.values())
    body = await ask(llm_client, "Who goes to the room?")
    assert body["degraded"] and sum(fake_llm.calls.values()) == before
    health = (await llm_client.get("/health")).json()
    assert health["services"]["llm"]["status"] == "degraded"
    assert len(health["services"]["llm"]["cooling_down"]) == 3


async def test_transient_500_is_retried_on_the_same_model(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.script(PRIMARY, Reply("error_500"), Reply.ok("second try [1]"))
    body = await ask(llm_client)
    assert body["model"] == PRIMARY and body["answer"] == "second try [1]"
    assert [a["outcome"] for a in body["attempts"]] == ["transient_error", "ok"]
    assert fake_llm.calls[PRIMARY] == 2 and fake_llm.calls[LITE] == 0


async def test_provider_bad_request_is_surfaced_as_a_422(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.script(PRIMARY, Reply("bad_400"))
    r = await llm_client.post("/api/v1/rag/ask", json={"question": QUESTION})
    assert r.status_code == 422 and r.json()["code"] == "llm_bad_request"
    assert fake_llm.calls[LITE] == 0


# -- streaming ---------------------------------------------------------------------------


async def test_stream_sends_meta_then_tokens_in_order_then_done(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.default[PRIMARY] = Reply.ok("Call the resident [1] now.")
    events = await ask_stream(llm_client)
    names = [n for n, _ in events]
    assert names[0] == "meta" and names[-1] == "done" and set(names[1:-1]) == {"token"}
    assert events[0][1]["sources"][0]["title"] == "Fall"
    assert [d["text"] for n, d in events if n == "token"] == [
        "Call ",
        "the ",
        "resident ",
        "[1] ",
        "now.",
    ]
    done = events[-1][1]
    assert (done["provider"], done["model"]) == ("gemini", PRIMARY)
    assert done["usage"] == {"tokens_in": 42, "tokens_out": 5}


async def test_stream_falls_back_before_the_first_token(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.script(PRIMARY, Reply.quota_per_day())
    fake_llm.default[LITE] = Reply.ok("from the fallback")
    events = await ask_stream(llm_client)
    assert "".join(d["text"] for n, d in events if n == "token") == "from the fallback"
    assert events[-1][0] == "done" and events[-1][1]["model"] == LITE


async def test_stream_broken_after_the_first_token_ends_with_an_error_event(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.script(PRIMARY, Reply("break_stream", text="alpha beta gamma", tokens_before_break=2))
    events = await ask_stream(llm_client)
    assert [n for n, _ in events] == ["meta", "token", "token", "error"]
    error = events[-1][1]
    assert error["code"] == "stream_interrupted" and error["partial"] == "alpha beta "
    assert fake_llm.calls[LITE] == 0


async def test_stream_with_every_model_exhausted_streams_the_local_answer(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    for model in (PRIMARY, LITE):
        fake_llm.default[model] = Reply.quota_per_day()
    fake_llm.default[GPT] = Reply("insufficient_quota")
    events = await ask_stream(llm_client)
    assert [n for n, _ in events] == ["meta", "token", "done"]
    assert "two minutes" in events[1][1]["text"]
    assert events[-1][1]["degraded"] and events[-1][1]["notice"]


# -- caching -----------------------------------------------------------------------------


async def test_same_question_is_answered_from_the_cache_until_docs_change(llm_client, fake_llm):
    ids = await add_docs(llm_client, ("Fall", FALL))
    first = await ask(llm_client)
    again = await ask(llm_client, "  what do we do when a FALL alert fires  ")
    assert again["cached"] and again["answer"] == first["answer"]
    assert again["sources"] == first["sources"]
    assert fake_llm.calls[PRIMARY] == 1
    # A different top_k is a different answer.
    assert not (await ask(llm_client, top_k=2))["cached"]

    r = await llm_client.patch(
        f"/api/v1/knowledge/docs/{ids[0]}", json={"content": FALL + " Log it."}
    )
    assert r.status_code == 200
    assert not (await ask(llm_client))["cached"]
    assert fake_llm.calls[PRIMARY] == 3


async def test_reindex_invalidates_the_cache(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    await ask(llm_client)
    r = await llm_client.post("/api/v1/knowledge/reindex")
    assert r.status_code == 202
    assert (await wait_for_job(llm_client, r.json()["id"]))["state"] == "succeeded"
    assert not (await ask(llm_client))["cached"]


async def test_local_answers_are_not_cached(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.script(PRIMARY, Reply.quota_per_day())
    fake_llm.script(LITE, Reply.quota_per_day())
    fake_llm.script(GPT, Reply("insufficient_quota"))
    assert (await ask(llm_client))["degraded"]
    assert not (await ask(llm_client))["cached"]


async def test_semantic_cache_reuses_an_answer_to_a_close_question_when_enabled(
    llm_client, llm_app, fake_llm
):
    settings = llm_app[0].state.container.settings().llm
    await add_docs(llm_client, ("Fall", FALL))
    await ask(llm_client, "What must we do when a fall alert fires?")
    # Off by default: a reworded question goes to the model.
    assert not (await ask(llm_client, "What should we do when a fall alert fires?"))["cached"]
    settings.semantic_cache = True
    try:
        await ask(llm_client, "What is required when the fall alert fires?")
        calls = fake_llm.calls[PRIMARY]
        close = await ask(llm_client, "What is required when a fall alert fires?")
        assert close["cached"] and fake_llm.calls[PRIMARY] == calls
        far = await ask(llm_client, "When is the fire drill?")
        assert not far["cached"]
    finally:
        settings.semantic_cache = False


async def test_pii_is_masked_before_caching_and_storing_when_enabled(llm_client, llm_app, fake_llm):
    settings = llm_app[0].state.container.settings().llm
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.default[PRIMARY] = Reply.ok("Reply to kim@example.com or 010-1234-5678 [1].")
    settings.pii_masking = True
    try:
        body = await ask(llm_client, "Resident 900101-1234567 (kim@example.com) fell, what now?")
    finally:
        settings.pii_masking = False
    assert "kim@example.com" in body["answer"]  # the caller still sees the real answer
    convo = (await llm_client.get(f"/api/v1/rag/conversations/{body['conversation_id']}")).json()
    turn = convo["turns"][0]
    assert "900101-1234567" not in turn["question"] and "[RRN]" in turn["question"]
    assert "[EMAIL]" in turn["question"] and "[PHONE]" in turn["answer"]
    cached = await ask(llm_client, "Resident 900101-1234567 (kim@example.com) fell, what now?")
    assert cached["cached"] and "[EMAIL]" in cached["answer"]


# -- conversations, stats ----------------------------------------------------------------


async def test_conversation_keeps_turns_and_feeds_recent_ones_into_the_prompt(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    first = await ask(llm_client)
    cid = first["conversation_id"]
    second = await ask(llm_client, "And if nobody answers?", conversation_id=cid)
    assert second["conversation_id"] == cid
    sent = json.dumps(fake_llm.requests[-1]["body"])
    assert QUESTION in sent and first["answer"] in sent

    r = await llm_client.get(f"/api/v1/rag/conversations/{cid}")
    assert r.status_code == 200
    turns = r.json()["turns"]
    assert [t["question"] for t in turns] == [QUESTION, "And if nobody answers?"]
    assert turns[0]["sources"][0]["title"] == "Fall"


async def test_unknown_conversation_is_a_404(llm_client):
    missing = "00000000-0000-4000-8000-000000000000"
    r = await llm_client.get(f"/api/v1/rag/conversations/{missing}")
    assert r.status_code == 404 and r.json()["code"] == "conversation_not_found"
    r = await llm_client.post(
        "/api/v1/rag/ask", json={"question": "hi", "conversation_id": missing}
    )
    assert r.status_code == 404


async def test_stats_dashboard_counts_calls_errors_fallbacks_tokens_and_cache(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.script(PRIMARY, Reply.quota_per_day())
    await ask(llm_client)
    await ask(llm_client)  # cached
    stats = (await llm_client.get("/api/v1/admin/llm/stats")).json()
    models = {m["model"]: m for m in stats["models"]}
    assert stats["chain"] == [f"gemini:{PRIMARY}", f"gemini:{LITE}", f"openai:{GPT}"]
    assert models[PRIMARY]["calls"] == 1 and models[PRIMARY]["quota_exhausted"] == 1
    assert models[PRIMARY]["fallbacks"] == 1 and models[PRIMARY]["cooldown_remaining_secs"] > 590
    assert models[LITE]["successes"] == 1 and models[LITE]["tokens_in"] == 42
    assert stats["cache"]["exact_hits"] == 1 and stats["cache"]["misses"] == 1


async def test_stats_count_quota_short_rate_limits_and_other_errors_apart_with_cooldown_ends(
    llm_client, fake_llm
):
    await add_docs(llm_client, ("Fall", FALL))
    fake_llm.script(PRIMARY, Reply.quota_per_day(retry_delay=None))
    # A per-minute limit asking for longer than the backoff cap cools the model for that delay.
    fake_llm.script(LITE, Reply.rate_per_minute(retry_delay="120s"))
    fake_llm.script(GPT, Reply("error_500"), Reply.ok())
    before = datetime.now(UTC)
    body = await ask(llm_client)
    assert body["model"] == GPT

    stats = (await llm_client.get("/api/v1/admin/llm/stats")).json()
    models = {m["model"]: m for m in stats["models"]}
    counts = ("errors", "quota_exhausted", "rate_limited", "other_errors", "successes")
    assert {k: models[PRIMARY][k] for k in counts} == dict.fromkeys(counts, 0) | {
        "errors": 1,
        "quota_exhausted": 1,
    }
    assert {k: models[LITE][k] for k in counts} == dict.fromkeys(counts, 0) | {
        "errors": 1,
        "rate_limited": 1,
    }
    assert {k: models[GPT][k] for k in counts} == dict.fromkeys(counts, 0) | {
        "errors": 1,
        "other_errors": 1,
        "successes": 1,
    }

    quota = models[PRIMARY]["cooldown"]
    assert quota["reason"] == "quota_exhausted"
    assert quota["detail"] == "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    ends = datetime.fromisoformat(quota["until"])
    assert timedelta(seconds=595) < ends - before < timedelta(seconds=610)
    assert 590 < quota["remaining_secs"] <= 600

    short = models[LITE]["cooldown"]
    assert short["reason"] == "rate_limited"
    ends = datetime.fromisoformat(short["until"])
    assert timedelta(seconds=115) < ends - before < timedelta(seconds=130)
    assert models[GPT]["cooldown"] is None and models[GPT]["cooldown_remaining_secs"] == 0


async def test_stats_dashboard_is_admin_only_in_production(make_app):
    async with make_app(
        environment="production", security={"access_token": "svc-token-for-tests-0123456789abcdef"}
    ) as (_, client):
        r = await client.get("/api/v1/admin/llm/stats")
        assert r.status_code == 401
        r = await client.get(
            "/api/v1/admin/llm/stats",
            headers={"Authorization": "Bearer svc-token-for-tests-0123456789abcdef"},
        )
        assert r.status_code == 403


async def test_cached_answer_outside_a_conversation_writes_no_turn(llm_client, fake_llm):
    await add_docs(llm_client, ("Fall", FALL))
    first = await ask(llm_client)
    cached = await ask(llm_client)
    assert cached["cached"] and cached["conversation_id"] is None
    turns = (await llm_client.get(f"/api/v1/rag/conversations/{first['conversation_id']}")).json()
    assert len(turns["turns"]) == 1
