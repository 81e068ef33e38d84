"""Learning from operators: labels on episodes, model versions, retraining, activation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import AfterValidator

from app.api.authz import READERS, GuardedRoute, require
from app.api.deps import get_episode_feedback, get_job_service, get_model_registry
from app.api.v1.alerts import who
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES, ValidationFailed
from app.core.security import Principal, Role
from app.schemas.learning import (
    ActivateIn,
    EpisodeFeedbackOut,
    FeedbackHistory,
    FeedbackIn,
    FeedbackSummary,
    ModelList,
    ModelVersionOut,
    TrainIn,
    TrainQueued,
)
from app.schemas.safety import check_optional_line
from app.services.episode_feedback import EpisodeFeedbackService
from app.services.jobs import JobName, JobService
from app.services.model_registry import ModelRegistry

router = APIRouter(
    route_class=GuardedRoute,
    prefix=API_PREFIX,
    tags=["learning"],
    responses=COMMON_ERROR_RESPONSES,
)

Feedback = Annotated[EpisodeFeedbackService, Depends(get_episode_feedback)]
Registry = Annotated[ModelRegistry, Depends(get_model_registry)]
Jobs = Annotated[JobService, Depends(get_job_service)]
# Operators and admins label; the service token (the agent) does not judge its own output.
Labeller = Annotated[Principal | None, Depends(require(Role.OPERATOR))]
Operator = Annotated[Principal | None, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal | None, Depends(require(Role.ADMIN))]
READ = [Depends(require(*READERS))]
Version = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


@router.post("/episodes/{episode_id}/feedback", response_model=EpisodeFeedbackOut)
async def label_episode(
    episode_id: uuid.UUID, body: FeedbackIn, principal: Labeller, service: Feedback
) -> EpisodeFeedbackOut:
    """Say what an episode really was (operator, admin): one of the active model's labels.
    Labelling again replaces the label; every change is kept (`GET .../feedback`)."""
    return await service.label(episode_id, body.label, body.note, who(principal))


@router.get("/episodes/{episode_id}/feedback", response_model=FeedbackHistory, dependencies=READ)
async def episode_feedback(episode_id: uuid.UUID, service: Feedback) -> FeedbackHistory:
    """An episode's current label and every change (who, when, old → new), oldest first."""
    return await service.history(episode_id)


@router.get("/feedback/summary", response_model=FeedbackSummary, dependencies=READ)
async def feedback_summary(
    service: Feedback,
    source_id: Annotated[
        str | None, Query(max_length=128), AfterValidator(check_optional_line)
    ] = None,
) -> FeedbackSummary:
    """Per source: labelled episodes, false alarms, misses, and how many carry a stored
    sequence (the ones retraining can use)."""
    return await service.summary(source_id)


@router.get("/models", response_model=ModelList)
async def list_models(registry: Registry, _caller: Operator) -> ModelList:
    """Behaviour-model versions newest first, with their figures and which one serves."""
    return await registry.listing()


@router.get("/models/{model_version}", response_model=ModelVersionOut)
async def get_model(
    model_version: Version, registry: Registry, _caller: Operator
) -> ModelVersionOut:
    """One version: status, figures beside the version active when it was trained, data."""
    return await registry.get(model_version)


@router.post("/models/{model_version}/activate", response_model=ModelVersionOut)
async def activate_model(
    model_version: Version, registry: Registry, principal: Admin, body: ActivateIn | None = None
) -> ModelVersionOut:
    """Serve this version in every process within seconds (admin). Refused with 409 and the
    figures when it is worse than the active one (the gate), unless `force` is true.
    Activating an older version is the rollback."""
    body = body or ActivateIn()
    return await registry.activate(model_version, who(principal), body.force, body.reason)


@router.post("/models/train", response_model=TrainQueued, status_code=status.HTTP_202_ACCEPTED)
async def train_model(
    body: TrainIn, jobs: Jobs, registry: Registry, principal: Admin, response: Response
) -> TrainQueued:
    """Retrain on the base data plus labelled episodes as a job (admin); the result is a
    candidate version with its figures beside the active one's. Follow `status_url`."""
    if not body.include_feedback:
        raise ValidationFailed(
            "include_feedback must be true: retraining learns from labelled episodes"
        )
    # Too few labels: a 409 now rather than a job that fails and pages someone.
    await registry.check_feedback(body.source_ids)
    params: dict[str, object] = {"requested_by": who(principal)}
    if body.source_ids:
        params["source_ids"] = sorted(set(body.source_ids))
    if body.epochs is not None:
        params["epochs"] = body.epochs
    job = await jobs.submit(JobName.RETRAIN, params, None, who(principal))
    url = f"{API_PREFIX}/jobs/{job.id}"
    response.headers["Location"] = url
    return TrainQueued(job_id=job.id, status_url=url)
