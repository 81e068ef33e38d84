"""`sentinel worker`: a process that runs background jobs from the Redis queue."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from loguru import logger

from app.container import Container
from app.core.settings import Settings
from app.core.tasks import stop_all


async def run_worker(settings: Settings) -> int:
    """Start what jobs need (Redis, embeddings, Chroma), consume until SIGTERM/SIGINT."""
    container = Container()
    container.settings.override(settings)
    queue = container.job_queue()
    queue.mark_worker()
    # Only the parts job functions use; no model batcher, alert dispatcher or event log.
    components: list[Any] = [
        container.redis(),
        container.embedder(),
        container.vector_store(),
        container.event_knowledge(),
        container.job_service(),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = []
    try:
        for component in components:
            await component.start()
            started.append(component)
        logger.info(
            "Sentinel worker started (queue {}, concurrency {})",
            queue.stream,
            settings.jobs.worker_concurrency,
        )
        await queue.work(stop)
    finally:
        await stop_all(reversed(started), lambda: asyncio.timeout(settings.shutdown_timeout_secs))
        await container.database().dispose()
        logger.info("Sentinel worker stopped")
    return 0
