"""Health: real round-trips to each dependency, aggregated into healthy / degraded / unhealthy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, SerializeAsAny

from app.core.database import Database
from app.core.health import ComponentHealth, down
from app.core.redis import RedisManager
from app.core.settings import Settings
from app.services.warmup import AssistantWarmup

HealthCheck = Callable[[], Awaitable[ComponentHealth]]

_OK = {"healthy", "disabled", "ok"}
# Components without which nothing works; any other failing component only degrades.
_CRITICAL = {"database"}


class DatabaseHealth(ComponentHealth):
    """`/health` component `database`: a real round-trip, the dialect and the pool's counters."""

    dialect: str | None = None
    pool: dict[str, Any]


class SystemHealth(BaseModel):
    """`GET /health`: the overall status and each component's own report."""

    status: str
    version: str
    environment: str
    timestamp: str
    services: dict[str, SerializeAsAny[ComponentHealth]]

    def as_json(self) -> dict[str, Any]:
        """The response body: each component with just the details it reported."""
        return self.model_dump(mode="json", exclude_unset=True)

    def summary_json(self) -> dict[str, Any]:
        """The body for anonymous callers in production and staging: the overall status and
        each component's status, nothing an attacker could map the deployment with (model
        threshold and labels, the LLM chain, collections, pool numbers, alert channels)."""
        return {
            "status": self.status,
            "timestamp": self.timestamp,
            "services": {name: {"status": c.status} for name, c in self.services.items()},
        }


class HealthService:
    """Runs every component check concurrently with a timeout."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        redis: RedisManager,
        checks: Mapping[str, HealthCheck] | None = None,
        timeout_secs: float = 3.0,
        warmup: AssistantWarmup | None = None,
    ) -> None:
        self.warmup = warmup
        self.settings = settings
        self.database = database
        self.redis = redis
        self.checks = dict(checks or {})
        self.timeout = timeout_secs

    async def database_health(self) -> DatabaseHealth:
        try:
            latency = await self.database.ping()
        except Exception as exc:  # any failure means "down"; the type is enough detail
            return DatabaseHealth(
                status="down", error=type(exc).__name__, pool=self.database.pool_stats()
            )
        return DatabaseHealth(
            status="healthy",
            latency_ms=round(latency, 3),
            dialect=self.database.dialect,
            pool=self.database.pool_stats(),
        )

    async def _run(self, check: HealthCheck) -> ComponentHealth:
        try:
            async with asyncio.timeout(self.timeout):
                return await check()
        except TimeoutError:
            return down("timeout")
        except Exception as exc:
            return down(type(exc).__name__)

    async def report(self) -> SystemHealth:
        checks: dict[str, HealthCheck] = {
            "database": self.database_health,
            "redis": self.redis.health,
            **self.checks,
        }
        names = list(checks)
        results = await asyncio.gather(*(self._run(checks[n]) for n in names))
        services = dict(zip(names, results, strict=True))
        status = "healthy"
        for name, result in services.items():
            if result.status in _OK:
                continue
            if name in _CRITICAL:
                status = "unhealthy"
                break
            status = "degraded"
        return SystemHealth(
            status=status,
            version=self.settings.version,
            environment=self.settings.environment.value,
            timestamp=datetime.now(UTC).isoformat(),
            services=services,
        )

    async def ready(self) -> bool:
        """The database answers and the assistant's models are loaded (see `AssistantWarmup`)."""
        if self.warmup is not None and not self.warmup.ready:
            return False
        return (await self.database_health()).status == "healthy"
