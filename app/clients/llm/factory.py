"""Builds the provider clients the settings allow (a provider without a key is left out)."""

from __future__ import annotations

from collections.abc import Sequence

from app.clients.llm.base import LLMClient
from app.clients.llm.registry import ProviderSpec, providers
from app.core.settings import LLMSettings


def build_llm_clients(
    settings: LLMSettings, registry: Sequence[ProviderSpec] | None = None
) -> dict[str, LLMClient]:
    """One client per provider of the registry that has a key, by provider name."""
    return {
        spec.name: spec.build(settings) for spec in providers(registry) if spec.enabled(settings)
    }
