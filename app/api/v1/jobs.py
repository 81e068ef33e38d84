"""Background jobs: status of one job, the job list and queue health, admin-started jobs."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status

from app.api.authz import ADMINS, GuardedRoute, require
from app.api.deps import get_job_service
from app.api.paging import Cursor, refuse_offset
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES, ValidationFailed
from app.core.security import Principal
from app.schemas.jobs import JobOut, JobPage, JobState, QueueStatusOut, RetentionRequest

if TYPE_CHECKING:
    from app.models.job import Job
from app.services.jobs import JobName, JobService

router = APIRouter(
    route_class=GuardedRoute, prefix=API_PREFIX, tags=["jobs"], responses=COMMON_ERROR_RESPONSES
)


Jobs = Annotated[JobService, Depends(get_job_service)]
AdminPrincipal = Annotated[Principal | None, Depends(require(*ADMINS))]


def created_by(principal: Principal | None) -> str | None:
    if principal is None:
        return None
    return str(principal.user_id) if principal.user_id is not None else principal.kind


def accepted(job: Job, response: Response) -> JobOut:
    """202 with the job and where to poll it."""
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobOut.model_validate(job)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: uuid.UUID, service: Jobs, _admin: AdminPrincipal) -> JobOut:
    """A job's state, progress, result or error. Whoever may start jobs (admins) may poll
    them; open in development."""
    return JobOut.model_validate(await service.get(job_id))


@router.get("/jobs", response_model=JobPage, dependencies=[Depends(refuse_offset)])
async def list_jobs(
    service: Jobs,
    _admin: AdminPrincipal,
    state: JobState | None = None,
    name: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    """Jobs newest first (admin); follow `next_cursor` for more."""
    page, total = await service.page(limit=limit, cursor=cursor, state=state, name=name)
    return JobPage(
        items=[JobOut.model_validate(j) for j in page.items],
        next_cursor=page.next_cursor,
        total=total,
    )


@router.get("/admin/queues", response_model=QueueStatusOut, tags=["admin"])
async def queue_status(service: Jobs, _admin: AdminPrincipal) -> QueueStatusOut:
    """Queue depth, live workers, running/retrying jobs and failures (admin)."""
    return QueueStatusOut.model_validate(await service.status())


@router.post(
    "/admin/jobs/train",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["admin"],
)
async def train_model(
    service: Jobs,
    admin: AdminPrincipal,
    response: Response,
    file: Annotated[UploadFile, File(description=".npz with X [N,T,F], y [N], optional lengths")],
    epochs: Annotated[int | None, Form(ge=1, le=500)] = None,
    folds: Annotated[int | None, Form(ge=2, le=10)] = None,
    normal_labels: Annotated[str | None, Form(max_length=500)] = None,
) -> JobOut:
    """Train the behaviour model on an uploaded `.npz` as a job (admin). The checkpoint is
    written next to the served one; it is not served until MODEL_CHECKPOINT_PATH points at it."""
    params: dict[str, object] = {}
    if epochs is not None:
        params["epochs"] = epochs
    if folds is not None:
        params["folds"] = folds
    if normal_labels:
        params["normal_labels"] = [s.strip() for s in normal_labels.split(",") if s.strip()]
    data = await file.read()
    if not data:
        raise ValidationFailed("The uploaded training file is empty", code="bad_npz")
    job = await service.submit_training(data, params, created_by(admin))
    return accepted(job, response)


@router.post(
    "/admin/jobs/episode-summaries",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["admin"],
)
async def episode_summaries(service: Jobs, admin: AdminPrincipal, response: Response) -> JobOut:
    """Rebuild the closed-episode summaries the assistant answers from, as a job (admin)."""
    return accepted(await service.submit(JobName.SUMMARIES, {}, None, created_by(admin)), response)


@router.post(
    "/admin/jobs/retention",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["admin"],
)
async def retention(
    body: RetentionRequest, service: Jobs, admin: AdminPrincipal, response: Response
) -> JobOut:
    """Run retention as a job (admin); `dry_run` (default true) only reports."""
    job = await service.submit(
        JobName.RETENTION, {"dry_run": body.dry_run}, None, created_by(admin)
    )
    return accepted(job, response)
