"""Builds the provider clients the settings allow (a provider without a key is left out)."""

from __future__ import annotations

from app.clients.llm.base import LLMClient
from app.core.settings import LLMSettings


def build_llm_clients(settings: LLMSettings) -> dict[str, LLMClient]:
    clients: dict[str, LLMClient] = {}
    if settings.gemini_api_key:
        from app.clients.llm.gemini import GeminiClient

        clients["gemini"] = GeminiClient(
            settings.gemini_api_key, settings.gemini_base_url, settings.timeout_secs
        )
    if settings.openai_api_key:
        from app.clients.llm.openai import OpenAIClient

        clients["openai"] = OpenAIClient(
            settings.openai_api_key, settings.openai_base_url, settings.timeout_secs
        )
    return clients
