"""Request and response bodies for background jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.models.job import JobState as JobState  # the API's words for a job's state


class JobOut(BaseModel):
    """A job's record: state, progress (0–1), result or error, attempts."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str = Field(examples=["knowledge.import"])
    state: JobState
    progress: float = Field(ge=0, le=1, examples=[0.42])
    progress_message: str | None = Field(default=None, examples=["210/500 files, 2100 chunks"])
    result: dict[str, Any] | None = Field(
        default=None, description="The job's result when it succeeded (while running: a checkpoint)"
    )
    error: str | None = None
    attempts: int
    max_attempts: int
    worker: str | None = Field(default=None, description="host:pid of the process that ran it")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime


class JobPage(BaseModel):
    """A page of jobs, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[JobOut]
    next_cursor: str | None
    total: int = Field(description="jobs matching the filters in all")


class BrokerBacklogOut(BaseModel):
    """The Redis stream behind the queue."""

    model_config = ConfigDict(from_attributes=True)

    waiting: int = Field(description="messages not yet handed to a worker")
    unacknowledged: int = Field(description="messages handed to a worker and not yet finished")


class QueueStatusOut(BaseModel):
    """`GET /admin/queues`."""

    model_config = ConfigDict(from_attributes=True)

    mode: str = Field(description="`redis` (sentinel worker processes) or `in_process`")
    depth: int = Field(description="jobs queued and not started")
    workers: int = Field(description="live worker processes (1 = the web process in-process)")
    running: int
    retrying: int
    failed: int
    succeeded: int
    broker: BrokerBacklogOut | None = None


class RetentionRequest(BaseModel):
    """Run retention now; `dry_run` (the default) reports what would be deleted."""

    dry_run: StrictBool = True
