"""`GET /api/v1/admin/stats`: usage per day and model matches the calls made against the fake
LLM server; Prometheus counters carry the same tokens and cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from app.models.usage import LLMUsageDay
from tests.fakes.llm import Reply
from tests.test_rag_api import FALL, GPT, LITE, PRIMARY, add_docs, ask

PRICES = "gemini-2.5-flash=1/2,gemini-2.5-flash-lite=3/5,gpt-4o-mini=7/11"


# The test reads two days and sums them, so a run that crosses midnight UTC still sees every
# call it made (the calls then land on two days).
WINDOW_DAYS = 2
COUNTS = ("calls", "successes", "quota_exhaustions", "fallbacks", "tokens_in", "tokens_out")
CACHE_COUNTS = ("exact_hits", "semantic_hits", "misses", "local_answers")


def _models(stats: dict) -> dict[str, dict]:
    totals: dict[str, dict] = {}
    for m in stats["models"]:
        row = totals.setdefault(m["model"], dict.fromkeys((*COUNTS, "cost_usd"), 0))
        for key in (*COUNTS, "cost_usd"):
            row[key] += m[key]
    return totals


def _cache(stats: dict) -> dict:
    totals = dict.fromkeys(CACHE_COUNTS, 0)
    for row in stats["cache"]:
        for key in CACHE_COUNTS:
            totals[key] += row[key]
    return totals


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _stats(client, days: int = WINDOW_DAYS) -> dict:
    r = await client.get(f"/api/v1/admin/stats?days={days}")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
async def priced_app(make_llm_app):
    async with make_llm_app(prices=PRICES) as pair:
        yield pair


@pytest.fixture
async def priced_client(priced_app, fake_llm, clean_state):
    from tests.fakes.fixtures import reset_rag_state

    app, client = priced_app
    fake_llm.reset()
    await reset_rag_state(app)
    return client


async def test_stats_match_the_calls_made_per_model_with_cost_and_cache(priced_client, fake_llm):
    client = priced_client
    await add_docs(client, ("Fall", FALL))
    before = await _stats(client)
    cost_before = _metric("sentinel_llm_cost_usd_total", provider="gemini", model=LITE)
    tokens_before = _metric(
        "sentinel_llm_tokens_total", provider="gemini", model=LITE, direction="in"
    )

    fake_llm.script(PRIMARY, Reply.quota_per_day())
    first = await ask(client)  # primary exhausted → lite answers
    assert first["model"] == LITE
    cached = await ask(client)  # exact cache hit: no call
    assert cached["cached"]
    second = await ask(client, "Who goes to the room?")  # primary cooling → lite
    assert second["model"] == LITE
    fake_llm.script(LITE, Reply.quota_per_day())
    fake_llm.script(GPT, Reply.quota_per_day())
    local = await ask(client, "When is the fire drill?")  # everything exhausted → local
    assert local["degraded"]

    after = await _stats(client)
    old, new = _models(before), _models(after)

    def delta(model: str, key: str) -> float:
        return new.get(model, {}).get(key, 0) - old.get(model, {}).get(key, 0)

    assert delta(PRIMARY, "calls") == 1
    assert delta(PRIMARY, "quota_exhaustions") == 1
    assert delta(PRIMARY, "fallbacks") == 1
    assert delta(PRIMARY, "successes") == 0
    assert delta(LITE, "calls") == 3 and delta(LITE, "successes") == 2
    assert delta(LITE, "quota_exhaustions") == 1 and delta(LITE, "fallbacks") == 1
    assert delta(GPT, "calls") == 1 and delta(GPT, "quota_exhaustions") == 1
    tokens_in = first["usage"]["tokens_in"] + second["usage"]["tokens_in"]
    tokens_out = first["usage"]["tokens_out"] + second["usage"]["tokens_out"]
    assert delta(LITE, "tokens_in") == tokens_in and delta(LITE, "tokens_out") == tokens_out
    expected_cost = (tokens_in * 3 + tokens_out * 5) / 1_000_000
    assert delta(LITE, "cost_usd") == pytest.approx(expected_cost, rel=1e-6)

    cache_old, cache_new = _cache(before), _cache(after)
    assert cache_new["exact_hits"] - cache_old["exact_hits"] == 1
    assert cache_new["misses"] - cache_old["misses"] == 3
    assert cache_new["local_answers"] - cache_old["local_answers"] == 1
    for day in after["cache"]:
        lookups = day["exact_hits"] + day["semantic_hits"] + day["misses"]
        expected = day["exact_hits"] / lookups if lookups else 0.0
        assert day["exact_hit_rate"] == pytest.approx(expected, abs=1e-4)

    # Prometheus carries the same numbers for Grafana.
    cost_after = _metric("sentinel_llm_cost_usd_total", provider="gemini", model=LITE)
    assert cost_after - cost_before == pytest.approx(expected_cost, rel=1e-6)
    tokens_after = _metric(
        "sentinel_llm_tokens_total", provider="gemini", model=LITE, direction="in"
    )
    assert tokens_after - tokens_before == tokens_in
    metrics = (await client.get("/metrics")).text
    assert "sentinel_llm_fallbacks_total" in metrics
    assert "sentinel_rag_local_answers_total" in metrics


async def test_stats_cover_the_requested_number_of_days(priced_app, priced_client):
    app, client = priced_app
    ten_days_ago = datetime.now(UTC).date() - timedelta(days=10)
    async with app.state.container.database().sessions.begin() as session:
        session.add(
            LLMUsageDay(
                day=ten_days_ago,
                provider="gemini",
                model="old-model",
                calls=5,
                successes=5,
                errors=0,
                rate_limited=0,
                quota_exhausted=0,
                fallbacks=0,
                served_as_fallback=0,
                tokens_in=10,
                tokens_out=20,
                cost_usd=0.5,
                cache_exact_hits=0,
                cache_semantic_hits=0,
                cache_misses=0,
                local_answers=0,
            )
        )
    week = await _stats(client, 7)
    assert all(m["model"] != "old-model" for m in week["models"])
    month = await _stats(client, 30)
    old = [m for m in month["models"] if m["model"] == "old-model"]
    assert old == [
        {
            "day": ten_days_ago.isoformat(),
            "provider": "gemini",
            "model": "old-model",
            "calls": 5,
            "successes": 5,
            "errors": 0,
            "fallbacks": 0,
            "quota_exhaustions": 0,
            "tokens_in": 10,
            "tokens_out": 20,
            "cost_usd": 0.5,
        }
    ]
    assert month["total_cost_usd"] >= 0.5 and month["since"] < ten_days_ago.isoformat()
    r = await client.get("/api/v1/admin/stats?days=0")
    assert r.status_code == 422


async def test_usage_stats_are_admin_only_in_production(make_app, clean_state):
    token = "svc-token-for-stats-tests-0123456789"
    async with make_app(environment="production", security={"access_token": token}) as (_, c):
        assert (await c.get("/api/v1/admin/stats")).status_code == 401
        r = await c.get("/api/v1/admin/stats", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403


def test_a_malformed_price_table_is_refused_with_a_clear_message():
    from pydantic import ValidationError

    from app.core.settings import LLMSettings

    with pytest.raises(ValidationError, match="model=input/output"):
        LLMSettings(prices="gemini-2.5-flash=cheap")
