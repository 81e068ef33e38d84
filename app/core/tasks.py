"""Small helpers for the background asyncio tasks that components start and stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from loguru import logger


class Stoppable(Protocol):
    async def stop(self) -> None: ...


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a component's background loop and wait until it has ended (None: nothing)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def stop_all(
    components: Iterable[Stoppable], deadline: Callable[[], AbstractAsyncContextManager[Any]]
) -> None:
    """Stop each component in turn within `deadline()` (e.g. `asyncio.timeout_at(t)`); a
    failure or timeout is logged and the rest still stop."""
    for component in components:
        try:
            async with deadline():
                await component.stop()
        except Exception as exc:
            logger.warning("stopping {} failed: {}", type(component).__name__, type(exc).__name__)
