"""Ready means ready: the assistant's models are loaded and its path exercised before the
process reports ready.

The embedder (torch + weights), Kiwi's model, the BM25 mirror of the knowledge chunks and the
Chroma collections each cost seconds the first time they are touched. Started with the app,
`AssistantWarmup` loads them in the background and runs one retrieval and one focused local
answer end to end; `/health/ready` answers 503 until it has finished, so a load balancer sends
the first question only to a process that answers it as fast as the tenth. A warm-up that fails
(a missing model, a vector store that is down) is logged and ends the wait: the process is
still useful for events and the failure shows in `/health`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from app.services.rag import RagService

# Covers Hangul, Latin and digits, so Kiwi, the regex tokenizer and the embedder all run.
WARMUP_QUESTION = "야간 당직 시작 시간 warm-up 1"


class AssistantWarmup:
    """Loads and exercises the assistant's path once, in the background, at start-up."""

    def __init__(self, rag: Callable[[], RagService]) -> None:
        self._rag = rag
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self.seconds: float | None = None

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> None:
        await self._done.wait()

    async def start(self) -> None:
        self._done = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="assistant-warmup")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        started = time.perf_counter()
        try:
            await self._rag().warm(WARMUP_QUESTION)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # readiness must not hang on a broken optional part
            logger.warning("assistant warm-up failed: {}: {}", type(exc).__name__, exc)
        finally:
            self.seconds = time.perf_counter() - started
            self._done.set()
        logger.info("assistant ready in {:.1f} s (embedder, tokenizer, index)", self.seconds)
