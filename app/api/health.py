"""Health probes for ops: /health, /health/live, /health/ready."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from app.api.authz import container_of, resolve_principal
from app.api.deps import get_health_service
from app.core.errors import Unauthorized
from app.schemas.health import HealthReport, Liveness, Readiness
from app.services.health import HealthService

router = APIRouter(prefix="/health", tags=["health"])

Health = Annotated[HealthService, Depends(get_health_service)]


# First (routes match in order) and encoded once: every prober hits it every few seconds.
_LIVE = Liveness().model_dump_json().encode()


@router.get("/live", response_model=Liveness)
async def live() -> Response:
    """The process answers."""
    return Response(_LIVE, media_type="application/json")


@router.head("", include_in_schema=False)
@router.head("/ready", include_in_schema=False)
async def head_probe(service: Health) -> Response:
    """HEAD for load balancers and uptime checkers: 503 when the database is down, no body."""
    ok = await service.ready()
    return Response(status_code=200 if ok else 503)


@router.head("/live", include_in_schema=False)
async def head_live() -> Response:
    return Response(status_code=200)


@router.get(
    "",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "Unhealthy"}},
)
async def health(request: Request, service: Health) -> JSONResponse:
    """Every component with real latencies; 503 when the database is down.

    Production and staging: without a valid token, only the overall and per-component status.
    """
    report = await service.report()
    body = report.as_json() if await _detailed(request) else report.summary_json()
    return JSONResponse(body, status_code=503 if report.status == "unhealthy" else 200)


async def _detailed(request: Request) -> bool:
    """Details for any valid token (user of any role, or the service), and in development.

    An invalid or expired token reads as anonymous rather than 401: a probe carrying a stale
    token still learns whether the service is up, and nothing more.
    """
    if not container_of(request).settings().is_gated:
        return True
    try:
        return await resolve_principal(request) is not None
    except Unauthorized:
        return False


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Database unreachable"}},
)
async def ready(service: Health) -> JSONResponse:
    """The database answers."""
    ok = await service.ready()
    return JSONResponse({"status": "ready" if ok else "not_ready"}, status_code=200 if ok else 503)
