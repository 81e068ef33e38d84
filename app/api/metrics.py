"""`GET /metrics`: Prometheus text exposition (behind the bearer gate unless METRICS_PUBLIC)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.api.authz import container_of, metrics_access
from app.core.errors import COMMON_ERROR_RESPONSES
from app.core.prometheus import CONTENT_TYPE_LATEST, render_metrics

router = APIRouter(tags=["ops"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        401: COMMON_ERROR_RESPONSES[401],
        403: COMMON_ERROR_RESPONSES[403],
    },
    dependencies=[Depends(metrics_access)],
)
async def metrics(request: Request) -> Response:
    """Request counts and latencies, model, events, alerts, LLM, pool and Redis gauges."""
    container = container_of(request)
    container.metrics_sampler().sample()
    await container.ops_metrics().sample()
    return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)
