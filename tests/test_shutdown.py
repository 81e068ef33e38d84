"""Lifespan shutdown: components stop in reverse order within one SHUTDOWN_TIMEOUT_SECS deadline."""

from __future__ import annotations

import asyncio
import time

from dependency_injector import providers

from app.container import Container
from app.main import create_app


class Component:
    """A lifecycle component that records its stop and may hang while stopping."""

    def __init__(self, name: str, log: list[str], hang: bool = False) -> None:
        self.name, self.log, self.hang = name, log, hang

    async def start(self) -> None:
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.hang:
            await asyncio.sleep(3600)


async def test_hanging_components_share_one_shutdown_deadline_and_the_rest_still_stop(
    settings_factory,
):
    log: list[str] = []
    container = Container()
    container.settings.override(settings_factory(shutdown_timeout_secs=0.5))
    container.lifecycle.override(
        providers.List(
            providers.Object(Component("first", log)),
            providers.Object(Component("hangs-a", log, hang=True)),
            providers.Object(Component("hangs-b", log, hang=True)),
            providers.Object(Component("hangs-c", log, hang=True)),
            providers.Object(Component("last", log)),
        )
    )
    app = create_app(container=container)
    async with app.router.lifespan_context(app):
        started = time.monotonic()
    elapsed = time.monotonic() - started
    assert log == [
        "start first",
        "start hangs-a",
        "start hangs-b",
        "start hangs-c",
        "start last",
        "stop last",
        "stop hangs-c",
        "stop hangs-b",
        "stop hangs-a",
        "stop first",
    ]
    assert elapsed < 1.2, f"shutdown took {elapsed:.2f} s for a 0.5 s deadline"
