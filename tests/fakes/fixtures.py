"""Fixtures for the knowledge assistant: the fake LLM server and apps wired to it.

Apps built here reuse the session app's embedding model (loaded once per test session).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from app.container import Container
from tests.fakes.llm import FakeLLMServer

LLM_COLLECTION = "kb_llm"


@pytest.fixture(scope="session")
def fake_llm() -> FakeLLMServer:
    server = FakeLLMServer().start()
    yield server
    server.stop()


def llm_settings(fake: FakeLLMServer, **extra: Any) -> dict[str, Any]:
    return {
        "gemini_api_key": "test-gemini-key",
        "gemini_base_url": fake.url,
        "primary_model": "gemini-2.5-flash",
        "fallback_models": "gemini-2.5-flash-lite",
        "openai_api_key": "sk-test",
        "openai_base_url": fake.url + "/v1",
        "openai_models": "gpt-4o-mini",
        "quota_cooldown_secs": 600,
        "timeout_secs": 5,
        "chroma_collection": LLM_COLLECTION,
        **extra,
    }


@pytest.fixture(scope="session")
def make_llm_app(app, make_app, fake_llm: FakeLLMServer):
    """`async with make_llm_app(**llm_overrides) as (app, client):` an app whose LLM chain points
    at the fake server (Gemini primary → Gemini fallback → OpenAI); `redis_url=` picks its Redis."""
    embedder = app.state.container.embedder()

    @asynccontextmanager
    async def factory(
        redis_url: str | None = None, **llm: Any
    ) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
        container = Container()
        container.embedder.override(providers.Object(embedder))
        extra: dict[str, Any] = {"redis": {"url": redis_url}} if redis_url is not None else {}
        async with make_app(container, llm=llm_settings(fake_llm, **llm), **extra) as pair:
            yield pair

    return factory


async def reset_rag_state(app: Any) -> None:
    """Empty index, caches, cooldowns, stats and disabled models of one app."""
    c = app.state.container
    await c.event_knowledge().join()  # summaries still queued from earlier tests land first
    await c.vector_store().clear()
    await c.vector_store().clear_events()
    await c.vector_store().clear_questions()
    c.answer_cache().clear_local()
    c.cooldowns().clear_local()
    c.llm_stats().clear_local()
    c.llm_router().disabled.clear()


@pytest.fixture(scope="module")
async def llm_app(make_llm_app) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with make_llm_app() as pair:
        yield pair


@pytest.fixture
async def llm_client(llm_app, fake_llm: FakeLLMServer, clean_state) -> httpx.AsyncClient:
    app, client = llm_app
    fake_llm.reset()
    await reset_rag_state(app)
    return client
