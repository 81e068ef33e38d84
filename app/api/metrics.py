"""`GET /metrics`: Prometheus text exposition (behind the bearer gate unless METRICS_PUBLIC)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.core.prometheus import CONTENT_TYPE_LATEST, render_metrics

router = APIRouter(tags=["ops"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Request counts and latencies, model, events, alerts, LLM, pool and Redis gauges."""
    request.app.state.container.metrics_sampler().sample()
    return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)
