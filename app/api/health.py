"""Health probes for ops: /health, /health/live, /health/ready."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from app.api.deps import get_health_service
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
async def health(service: Health) -> JSONResponse:
    """Every component with real latencies; 503 when the database is down."""
    report = await service.report()
    return JSONResponse(report.as_json(), status_code=503 if report.status == "unhealthy" else 200)


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Database unreachable"}},
)
async def ready(service: Health) -> JSONResponse:
    """The database answers."""
    ok = await service.ready()
    return JSONResponse({"status": "ready" if ok else "not_ready"}, status_code=200 if ok else 503)
