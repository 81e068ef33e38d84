"""The one table of LLM providers: which settings switch each on, its models, its client.

Chain order is table order. Adding a provider (e.g. Anthropic) = its client module (an
`LLMClient` taking `(api_key, base_url, timeout_secs)`), its settings in `LLMSettings`, and one
`ProviderSpec` here; `build_llm_clients` and the router's `build_chain` both read this table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.clients.llm.base import LLMClient
from app.core.settings import LLMSettings


def comma_list(value: str) -> list[str]:
    """`"a, b,,c"` → `["a", "b", "c"]`."""
    return [part.strip() for part in value.split(",") if part.strip()]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider: a name, how to read its key/endpoint/models from the settings, its client.

    `client` is `"module:Class"`, imported only when the provider has a key, so an
    unused provider's SDK is never loaded.
    """

    name: str
    client: str
    api_key: Callable[[LLMSettings], str]
    base_url: Callable[[LLMSettings], str]
    models: Callable[[LLMSettings], list[str]]

    def enabled(self, settings: LLMSettings) -> bool:
        return bool(self.api_key(settings))

    def build(self, settings: LLMSettings) -> LLMClient:
        module_name, _, class_name = self.client.partition(":")
        client_class = getattr(importlib.import_module(module_name), class_name)
        client: LLMClient = client_class(
            self.api_key(settings), self.base_url(settings), settings.timeout_secs
        )
        return client


PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="gemini",
        client="app.clients.llm.gemini:GeminiClient",
        api_key=lambda s: s.gemini_api_key,
        base_url=lambda s: s.gemini_base_url,
        models=lambda s: [s.primary_model, *comma_list(s.fallback_models)],
    ),
    ProviderSpec(
        name="openai",
        client="app.clients.llm.openai:OpenAIClient",
        api_key=lambda s: s.openai_api_key,
        base_url=lambda s: s.openai_base_url,
        models=lambda s: comma_list(s.openai_models),
    ),
)


def providers(registry: Sequence[ProviderSpec] | None = None) -> Sequence[ProviderSpec]:
    """The given table, or the module's `PROVIDERS` as it is now (tests may extend it)."""
    return PROVIDERS if registry is None else registry
