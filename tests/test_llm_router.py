"""The LLM router in isolation: real provider clients against the fake Gemini/OpenAI server,
cooldowns in real Redis (or in-process without Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.clients.llm.base import ChatMessage
from app.clients.llm.errors import BadRequest
from app.clients.llm.factory import build_llm_clients
from app.clients.llm.gemini import parse_duration
from app.core.redis import RedisManager
from app.core.settings import LLMSettings
from app.repositories.llm import CooldownStore, LLMStatsStore
from app.services.llm_router import (
    AllModelsUnavailable,
    LLMRouter,
    StreamInterrupted,
    build_chain,
)
from tests.fakes.fixtures import llm_settings
from tests.fakes.llm import FakeLLMServer, Reply

MESSAGES = [ChatMessage("system", "Answer briefly."), ChatMessage("user", "What now?")]
PRIMARY, LITE, GPT = "gemini-2.5-flash", "gemini-2.5-flash-lite", "gpt-4o-mini"


@pytest.fixture
async def redis(settings_factory, clean_state) -> AsyncIterator[RedisManager]:
    manager = RedisManager(settings_factory().redis)
    await manager.start()
    yield manager
    await manager.stop()


class Sleeps(list):
    """Records backoff delays instead of sleeping."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def make_router(fake_llm: FakeLLMServer, redis: RedisManager):
    fake_llm.reset()
    routers: list[LLMRouter] = []

    def build(**overrides: Any) -> LLMRouter:
        settings = LLMSettings(
            **{
                **llm_settings(fake_llm),
                "backoff_base_secs": 1.0,
                "backoff_max_secs": 4.0,
                **overrides,
            }
        )
        router = LLMRouter(
            settings,
            build_llm_clients(settings),
            CooldownStore(redis),
            LLMStatsStore(redis),
            sleep=Sleeps(),
        )
        routers.append(router)
        return router

    yield build


def outcomes(attempts) -> list[tuple[str, str]]:
    return [(a.model, a.outcome) for a in attempts]


async def test_chain_is_primary_then_fallbacks_then_openai_without_duplicates():
    settings = LLMSettings(
        gemini_api_key="g",
        openai_api_key="o",
        primary_model=PRIMARY,
        fallback_models=f"{PRIMARY}, {LITE},gemini-2.5-pro",
        openai_models="gpt-4o-mini,gpt-4.1-mini",
    )
    assert [r.key for r in build_chain(settings)] == [
        f"gemini:{PRIMARY}",
        f"gemini:{LITE}",
        "gemini:gemini-2.5-pro",
        "openai:gpt-4o-mini",
        "openai:gpt-4.1-mini",
    ]
    assert [r.key for r in build_chain(settings.model_copy(update={"gemini_api_key": ""}))] == [
        "openai:gpt-4o-mini",
        "openai:gpt-4.1-mini",
    ]


async def test_quota_exhausted_primary_falls_back_to_next_model_at_once(make_router, fake_llm):
    router = make_router()
    fake_llm.script(PRIMARY, Reply.quota_per_day())
    fake_llm.default[LITE] = Reply.ok("from lite [1]")

    result = await router.complete(MESSAGES)

    assert (result.provider, result.model, result.text) == ("gemini", LITE, "from lite [1]")
    assert outcomes(result.attempts) == [(PRIMARY, "quota_exhausted"), (LITE, "ok")]
    assert fake_llm.calls[PRIMARY] == 1 and router.sleep == []  # no retry, no backoff


async def test_quota_exhausted_model_gets_no_calls_during_cooldown(make_router, fake_llm):
    router = make_router(quota_cooldown_secs=60)
    # The provider's RetryInfo (900 s) is longer than the setting (60 s): the longer one wins.
    fake_llm.script(PRIMARY, Reply.quota_per_day(retry_delay="900s"))
    await router.complete(MESSAGES)
    for _ in range(3):
        result = await router.complete(MESSAGES)
        assert result.model == LITE
        assert outcomes(result.attempts)[0] == (PRIMARY, "skipped_cooling")
    assert fake_llm.calls[PRIMARY] == 1
    left = await router.cooldowns.remaining(f"gemini:{PRIMARY}")
    assert 890 < left <= 900
    status = await router.status()
    assert f"gemini:{PRIMARY}" in status.cooling_down and status.status == "healthy"


async def test_cooldown_is_shared_with_a_second_process_through_redis(
    fake_llm, settings_factory, shared_redis_url, clean_state
):
    fake_llm.reset()
    managers = []
    routers = []
    try:
        for _ in range(2):  # two processes: separate managers and stores, one Redis
            manager = RedisManager(settings_factory(redis={"url": shared_redis_url}).redis)
            await manager.start()
            managers.append(manager)
            settings = LLMSettings(**llm_settings(fake_llm))
            routers.append(
                LLMRouter(
                    settings,
                    build_llm_clients(settings),
                    CooldownStore(manager),
                    LLMStatsStore(manager),
                    sleep=Sleeps(),
                )
            )
        first, second = routers
        fake_llm.script(PRIMARY, Reply.quota_per_day())
        await first.complete(MESSAGES)
        assert await second.cooldowns.remaining(f"gemini:{PRIMARY}") > 0
        result = await second.complete(MESSAGES)
        assert result.model == LITE and fake_llm.calls[PRIMARY] == 1
    finally:
        for manager in managers:
            await manager.stop()


async def test_transient_500_is_retried_with_exponential_backoff(make_router, fake_llm):
    router = make_router()
    fake_llm.script(PRIMARY, Reply("error_500"), Reply("error_500"), Reply.ok("third time"))
    result = await router.complete(MESSAGES)
    assert result.model == PRIMARY and result.text == "third time"
    assert fake_llm.calls[PRIMARY] == 3
    assert router.sleep == [1.0, 2.0]
    assert outcomes(result.attempts) == [
        (PRIMARY, "transient_error"),
        (PRIMARY, "transient_error"),
        (PRIMARY, "ok"),
    ]


async def test_transient_errors_use_up_the_attempts_then_fall_back(make_router, fake_llm):
    router = make_router()
    fake_llm.default[PRIMARY] = Reply("error_500")
    result = await router.complete(MESSAGES)
    assert result.model == LITE and fake_llm.calls[PRIMARY] == 3
    assert await router.cooldowns.remaining(f"gemini:{PRIMARY}") == 0  # not a quota problem


async def test_per_minute_rate_limit_honours_a_short_provider_retry_delay(make_router, fake_llm):
    router = make_router()
    fake_llm.script(PRIMARY, Reply.rate_per_minute(retry_delay="0.5s"), Reply.ok("after wait"))
    result = await router.complete(MESSAGES)
    assert result.text == "after wait" and router.sleep == [0.5]


async def test_per_minute_rate_limit_with_a_long_delay_moves_on_and_cools_briefly(
    make_router, fake_llm
):
    router = make_router()
    fake_llm.script(PRIMARY, Reply.rate_per_minute(retry_delay="30s"))
    result = await router.complete(MESSAGES)
    assert result.model == LITE and router.sleep == []
    assert 0 < await router.cooldowns.remaining(f"gemini:{PRIMARY}") <= 30


async def test_auth_error_disables_the_model_until_restart(make_router, fake_llm):
    router = make_router()
    fake_llm.script(PRIMARY, Reply("auth_401"))
    fake_llm.script(LITE, Reply("auth_403"))
    result = await router.complete(MESSAGES)
    assert (result.provider, result.model) == ("openai", GPT)
    result = await router.complete(MESSAGES)
    assert outcomes(result.attempts)[:2] == [
        (PRIMARY, "skipped_disabled"),
        (LITE, "skipped_disabled"),
    ]
    assert fake_llm.calls[PRIMARY] == 1 and fake_llm.calls[LITE] == 1
    assert set((await router.status()).disabled) == {f"gemini:{PRIMARY}", f"gemini:{LITE}"}


async def test_bad_request_is_surfaced_without_retry_or_fallback(make_router, fake_llm):
    router = make_router()
    fake_llm.script(PRIMARY, Reply("bad_400"))
    with pytest.raises(BadRequest):
        await router.complete(MESSAGES)
    assert fake_llm.calls[PRIMARY] == 1 and fake_llm.calls[LITE] == 0


async def test_openai_insufficient_quota_cools_the_model_down(make_router, fake_llm):
    router = make_router(gemini_api_key="")
    fake_llm.script(GPT, Reply("insufficient_quota"))
    with pytest.raises(AllModelsUnavailable) as info:
        await router.complete(MESSAGES)
    assert outcomes(info.value.attempts) == [(GPT, "quota_exhausted")]
    assert info.value.cooling[f"openai:{GPT}"] > 590
    with pytest.raises(AllModelsUnavailable):
        await router.complete(MESSAGES)
    assert fake_llm.calls[GPT] == 1


async def test_every_model_exhausted_reports_cooldowns_and_attempts(make_router, fake_llm):
    router = make_router()
    for model in (PRIMARY, LITE):
        fake_llm.default[model] = Reply.quota_per_day()
    fake_llm.default[GPT] = Reply("insufficient_quota")
    with pytest.raises(AllModelsUnavailable) as info:
        await router.complete(MESSAGES)
    assert info.value.configured and len(info.value.cooling) == 3
    assert [o for _, o in outcomes(info.value.attempts)] == ["quota_exhausted"] * 3
    assert (await router.status()).status == "degraded"


async def test_no_keys_means_no_chain_and_no_calls(make_router, fake_llm):
    router = make_router(gemini_api_key="", openai_api_key="")
    with pytest.raises(AllModelsUnavailable) as info:
        await router.complete(MESSAGES)
    assert not info.value.configured and sum(fake_llm.calls.values()) == 0
    assert (await router.status()).status == "disabled"


async def collect(router: LLMRouter) -> tuple[list[str], Any]:
    tokens, done = [], None
    async for kind, value in router.stream(MESSAGES):
        if kind == "token":
            tokens.append(value)
        else:
            done = value
    return tokens, done


async def test_stream_delivers_tokens_in_order_with_usage(make_router, fake_llm):
    router = make_router()
    fake_llm.default[PRIMARY] = Reply.ok("one two three four")
    tokens, done = await collect(router)
    assert tokens == ["one ", "two ", "three ", "four"]
    assert (done.model, done.tokens_in, done.tokens_out) == (PRIMARY, 42, 4)


async def test_stream_falls_back_before_the_first_token(make_router, fake_llm):
    router = make_router()
    fake_llm.script(PRIMARY, Reply.quota_per_day())
    # A stream that drops before any text is a transient failure: retried, then the next model.
    fake_llm.default[LITE] = Reply("break_stream", tokens_before_break=0)
    fake_llm.default[GPT] = Reply.ok("from openai")
    tokens, done = await collect(router)
    assert "".join(tokens) == "from openai" and done.provider == "openai"
    assert outcomes(done.attempts) == [
        (PRIMARY, "quota_exhausted"),
        *[(LITE, "transient_error")] * 3,
        (GPT, "ok"),
    ]


async def test_stream_broken_after_the_first_token_raises_with_the_partial_text(
    make_router, fake_llm
):
    router = make_router()
    fake_llm.script(PRIMARY, Reply("break_stream", text="alpha beta gamma", tokens_before_break=2))
    tokens: list[str] = []
    with pytest.raises(StreamInterrupted) as info:
        async for kind, value in router.stream(MESSAGES):
            if kind == "token":
                tokens.append(value)
    assert info.value.partial == "alpha beta " == "".join(tokens)
    assert fake_llm.calls[LITE] == 0  # no silent switch mid-answer


async def test_openai_stream_and_completion_carry_usage(make_router, fake_llm):
    router = make_router(gemini_api_key="")
    result = await router.complete(MESSAGES)
    assert (result.provider, result.tokens_in) == ("openai", 42)
    tokens, done = await collect(router)
    assert len(tokens) > 1 and done.tokens_out == len(tokens)


def test_retry_delay_durations_parse():
    assert parse_duration("37s") == 37.0 and parse_duration("1.5s") == 1.5
    assert parse_duration("soon") is None and parse_duration(None) is None
