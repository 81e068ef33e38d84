"""Helpers shared by the event, episode and alert tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

T0 = datetime(2026, 11, 25, 1, 0, 0, tzinfo=UTC)

ABNORMAL = {"normal": 0.1, "fall": 0.85, "fight": 0.05}
NORMAL = {"normal": 0.9, "fall": 0.05, "fight": 0.05}


def event(
    event_type: str,
    source_id: str = "cam-1",
    at: datetime | None = None,
    seconds: float = 0,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "source_id": source_id,
        "event_type": event_type,
        "timestamp": ((at or T0) + timedelta(seconds=seconds)).isoformat(),
    }
    body.update(extra)
    return body


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/api/v1/events", json=body)
    assert r.status_code == 202, r.text
    return r.json()


async def abnormal_episode(client: httpx.AsyncClient, source_id: str = "cam-1") -> dict[str, Any]:
    """START → PROBS ×2 → END with abnormal probabilities; returns the END's response."""
    await post(client, event("START", source_id))
    await post(client, event("PROBS", source_id, seconds=1, probs=ABNORMAL))
    await post(client, event("PROBS", source_id, seconds=2, probs=ABNORMAL))
    return await post(client, event("END", source_id, seconds=3, probs=ABNORMAL))


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02
) -> Any:
    """Poll `check` until it returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


async def alerts(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/alerts", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]
