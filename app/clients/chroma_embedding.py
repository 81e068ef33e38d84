"""Chroma embedding function backed by Sentinel's local sentence-transformers `Embedder`
(imported lazily by the vector store: chromadb is a heavy import)."""

from __future__ import annotations

from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from app.core.settings import LLMSettings
from app.ml.embedding import Embedder

_NAME = "sentinel-sentence-transformers"


class LocalEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by the app's sentence-transformers `Embedder`."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return _NAME

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.embedder.model_name, "backend": self.embedder.backend}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LocalEmbeddingFunction:
        return LocalEmbeddingFunction(
            Embedder(
                LLMSettings(
                    embedding_model=config.get("model", ""),
                    embedding_backend=config.get("backend", "minilm"),
                )
            )
        )
