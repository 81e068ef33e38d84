"""Behaviour analysis endpoints (and the legacy `/behavior/analyze` path the agent calls)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response

from app.api.authz import PRODUCERS, READERS, GuardedRoute, container_of, require
from app.api.deps import get_behavior_service
from app.api.v1.prefix import API_PREFIX
from app.core.encoding import dumps
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.behavior import (
    AnalysisOut,
    AnalyzeRequest,
    BatchAnalysisOut,
    ModelInfo,
    analyze_openapi_examples,
)
from app.services.agents import ensure_sources_allowed
from app.services.behavior import AnalysisResult, BehaviorService

Behavior = Annotated[BehaviorService, Depends(get_behavior_service)]

router = APIRouter(
    route_class=GuardedRoute,
    prefix=f"{API_PREFIX}/behavior",
    tags=["behavior"],
    responses=COMMON_ERROR_RESPONSES,
)
# Same handler at the path the existing video-analytics agent calls; kept out of the schema.
compat_router = APIRouter(route_class=GuardedRoute, prefix="/behavior", include_in_schema=False)


@router.post(
    "/analyze",
    response_model=AnalysisOut | BatchAnalysisOut,
    response_model_exclude_none=False,
    summary="Score a feature sequence (or a batch) for abnormal behaviour",
    dependencies=[Depends(require(*PRODUCERS))],
)
@compat_router.post(
    "/analyze",
    response_model=AnalysisOut | BatchAnalysisOut,
    dependencies=[Depends(require(*PRODUCERS))],
)
async def analyze(
    body: Annotated[AnalyzeRequest, Body(openapi_examples=analyze_openapi_examples())],
    request: Request,
) -> Response:
    """Frame-wise feature vectors in, label probabilities and an anomaly verdict out.

    Concurrent requests are coalesced into one forward pass. `is_anomaly` is
    `anomaly_score >= threshold`, where `anomaly_score` sums the probabilities of the
    labels that are not normal (see `GET /api/v1/behavior/model`).
    """
    # The agent's hot path, like event ingest: the service straight from the container rather
    # than as a solved dependency, and the answer encoded here in `AnalysisOut`'s shape rather
    # than validated against the response model's union again.
    if body.source_id is not None:  # an agent credential speaks only for its own sources
        ensure_sources_allowed(getattr(request.state, "principal", None), (body.source_id,))
    service = container_of(request).behavior_service()
    if body.sequence is not None:
        answer: object = _out(await service.analyze(body.sequence), body.source_id)
    else:
        results = await service.analyze_many(body.sequences or [])
        answer = {
            "results": [_out(r, body.source_id) for r in results],
            "source_id": body.source_id,
        }
    return Response(dumps(answer), media_type="application/json")


def _out(result: AnalysisResult, source_id: str | None) -> dict[str, object]:
    """`AnalysisOut`'s fields (the result's, by the same names, then `source_id`)."""
    return {**vars(result), "source_id": source_id}


@router.get(
    "/model",
    response_model=ModelInfo,
    summary="The loaded model's metadata and metrics",
    dependencies=[Depends(require(*READERS))],
)
async def model_info(service: Behavior) -> ModelInfo:
    """Labels, normal labels, threshold, architecture, training data fingerprint and metrics."""
    return service.model_info()
