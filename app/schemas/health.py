"""Health response bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class HealthReport(BaseModel):
    """Overall status and one entry per component."""

    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    environment: str
    timestamp: str
    services: dict[str, dict[str, Any]] = Field(
        description="Per component: status, latency_ms where measured, and details"
    )


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["alive"] = "alive"


class Readiness(BaseModel):
    """The database answers."""

    status: Literal["ready", "not_ready"]
