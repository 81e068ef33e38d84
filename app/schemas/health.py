"""Health response bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class HealthReport(BaseModel):
    """Overall status and one entry per component.

    In production and staging an anonymous caller gets only `status`, `timestamp` and each
    component's `status`; any valid token (a user of any role, or the service) gets the rest.
    """

    status: Literal["healthy", "degraded", "unhealthy"]
    version: str | None = Field(None, description="With a token (always in development)")
    environment: str | None = Field(None, description="With a token (always in development)")
    timestamp: str
    services: dict[str, dict[str, Any]] = Field(
        description="Per component: status; with a token also latency_ms and details"
    )


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["alive"] = "alive"


class Readiness(BaseModel):
    """The database answers."""

    status: Literal["ready", "not_ready"]
