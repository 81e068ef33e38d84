"""Background jobs: one row per queued unit of work, whichever process runs it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from app.models.base import Base, TimestampMixin


class JobState(StrEnum):
    """queued → running → succeeded | failed; running → retrying → running on a transient error."""

    queued = "queued"
    running = "running"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.succeeded, JobState.failed)


class Job(TimestampMixin, Base):
    """A job record: the queue message carries only its id; state and progress live here.

    `payload` holds an uploaded file (an import archive, a training `.npz`) so a worker on
    another machine can read it; it is never loaded with the row and is cleared when the job
    finishes.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_created_at", "state", "created_at"),
        Index("ix_jobs_name_created_at", "name", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[JobState] = mapped_column(
        Enum(
            JobState,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
            name="job_state",
        ),
        default=JobState.queued,
    )
    params: Mapped[dict] = mapped_column(default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(String(300))
    result: Mapped[dict | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    created_by: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    payload: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, default=None))
