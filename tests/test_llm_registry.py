"""One provider registry: a provider added as one table entry reaches the chain, the clients,
the answers and the stats dashboard with no other edit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.clients.llm import registry
from app.clients.llm.base import ChatMessage, Completion, StreamChunk
from app.clients.llm.factory import build_llm_clients
from app.clients.llm.registry import PROVIDERS, ProviderSpec
from app.core.settings import LLMSettings
from app.services.llm_router import ModelRef, build_chain
from tests.fakes.fixtures import reset_rag_state

ECHO = ProviderSpec(
    name="echo",
    client="tests.test_llm_registry:EchoClient",
    api_key=lambda s: "echo-key",
    base_url=lambda s: "",
    models=lambda s: ["echo-1", "echo-2"],
)


class EchoClient:
    """A provider that answers with the last line of the prompt (no network)."""

    provider = "echo"

    def __init__(self, api_key: str, base_url: str, timeout_secs: float) -> None:
        self.api_key = api_key

    async def complete(self, model: str, messages: list[ChatMessage]) -> Completion:
        return Completion(text=f"echo from {model}", tokens_in=3, tokens_out=2)

    async def stream(self, model: str, messages: list[ChatMessage]) -> AsyncIterator[StreamChunk]:
        yield StreamChunk(text=f"echo from {model}", tokens_in=3, tokens_out=2)

    async def aclose(self) -> None:
        return None


def test_chain_and_clients_follow_the_registry_order() -> None:
    settings = LLMSettings(gemini_api_key="g", openai_api_key="o")
    table = (*PROVIDERS, ECHO)
    assert build_chain(settings, table) == [
        ModelRef("gemini", "gemini-2.5-flash"),
        ModelRef("gemini", "gemini-2.5-flash-lite"),
        ModelRef("openai", "gpt-4o-mini"),
        ModelRef("echo", "echo-1"),
        ModelRef("echo", "echo-2"),
    ]
    clients = build_llm_clients(LLMSettings(), table)
    assert list(clients) == ["echo"] and isinstance(clients["echo"], EchoClient)


async def test_a_provider_added_by_one_registry_entry_answers_and_is_counted(
    make_llm_app, clean_state, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "PROVIDERS", (*PROVIDERS, ECHO))
    # Only the new provider has a key, so it alone forms the chain.
    async with make_llm_app(gemini_api_key="", openai_api_key="") as (app, client):
        await reset_rag_state(app)
        r = await client.post(
            "/api/v1/knowledge/docs", json={"title": "Fall", "content": "Call within two minutes."}
        )
        assert r.status_code == 201, r.text
        r = await client.post("/api/v1/rag/ask", json={"question": "How fast do we call?"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["provider"] == "echo" and body["model"] == "echo-1"
        assert body["answer"].startswith("echo from echo-1")
        stats = (await client.get("/api/v1/admin/llm/stats")).json()
    assert stats["chain"] == ["echo:echo-1", "echo:echo-2"]
    echo = next(m for m in stats["models"] if m["model"] == "echo-1")
    assert echo["provider"] == "echo" and echo["successes"] == 1 and echo["tokens_out"] == 2
