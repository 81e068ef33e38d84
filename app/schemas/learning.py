"""Wire types of learning from operators: episode labels, model versions, retraining."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.schemas.safety import check_line, check_multiline


class FeedbackOutcome(StrEnum):
    """What an operator's label says about Sentinel's verdict on the episode."""

    FALSE_ALARM = "false_alarm"  # flagged abnormal, labelled normal
    MISS = "miss"  # judged normal, labelled abnormal
    CONFIRMED = "confirmed"  # the label agrees with the verdict
    UNDECIDED = "undecided"  # open, or decided "unknown": nothing to agree with yet


class ModelStatus(StrEnum):
    """A version's place: serving now, never served, or served before."""

    ACTIVE = "active"
    CANDIDATE = "candidate"
    RETIRED = "retired"


Label = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_line)]
Note = Annotated[str, Field(max_length=1000), AfterValidator(check_multiline)]


class FeedbackIn(BaseModel):
    """An operator's label for an episode (one of the active model's labels)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"label": "walking", "note": "청소 중인 직원입니다"}]},
    )

    label: Label
    note: Note | None = None


class EpisodeFeedback(BaseModel):
    """The current label of an episode."""

    label: str
    note: str | None
    by: str
    at: datetime


class EpisodeFeedbackOut(EpisodeFeedback):
    """The label just recorded, and what it says about the verdict."""

    episode_id: uuid.UUID
    outcome: FeedbackOutcome
    changes: int


class LabelChangeOut(BaseModel):
    """One change of an episode's label."""

    old_label: str | None
    new_label: str
    note: str | None
    by: str
    at: datetime


class FeedbackHistory(BaseModel):
    """An episode's current label and every change, oldest first."""

    current: EpisodeFeedbackOut | None
    history: list[LabelChangeOut]


class SourceFeedback(BaseModel):
    """Labelled episodes of one source (`*` for all) and what they say about the verdicts."""

    source_id: str
    labelled: int
    false_alarms: int
    misses: int
    with_sequence: int
    false_alarm_rate: float | None = Field(
        description="False alarms over labelled episodes that were flagged (None: none flagged)"
    )


class FeedbackSummary(BaseModel):
    """Per source, and in total."""

    sources: list[SourceFeedback]
    total: SourceFeedback


class FigureSet(BaseModel):
    """A version's figures on one data set."""

    n: int
    accuracy: float | None
    false_alarms: int
    misses: int


class ModelActivationOut(BaseModel):
    """One activation of a version."""

    at: datetime
    by: str | None
    forced: bool
    reason: str | None
    previous_version: str | None


class ModelVersionOut(BaseModel):
    """A behaviour-model version (no weights)."""

    model_version: str
    created_at: datetime
    created_by: str | None
    status: ModelStatus
    origin: str
    parent_version: str | None
    labels: list[str]
    normal_labels: list[str]
    threshold: float
    size_bytes: int
    metrics: dict[str, Any] = Field(
        description="`candidate` and `active` figures (base test split, held-out feedback) "
        "from the training run, and `compared_with`, the version active then"
    )
    trained_on: dict[str, Any]
    activations: list[ModelActivationOut]


class ModelList(BaseModel):
    """Every version, newest first, and which one serves."""

    active: str | None
    items: list[ModelVersionOut]


class ActivateIn(BaseModel):
    """Make a version active; `force` overrides the promotion gate (recorded)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"force": False}]})

    force: bool = False
    reason: Note | None = None


class TrainIn(BaseModel):
    """Retrain the active model on the base data plus operators' labels."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"include_feedback": True}]}
    )

    include_feedback: bool = Field(
        True, description="Must be true: retraining learns from labelled episodes"
    )
    source_ids: (
        list[Annotated[str, Field(min_length=1, max_length=128), AfterValidator(check_line)]] | None
    ) = Field(None, max_length=100, description="Only these sources' labels (one site's)")
    epochs: int | None = Field(None, ge=1, le=200, description="Fine-tuning epochs (default 30)")


class TrainQueued(BaseModel):
    """Where to follow the retraining job."""

    job_id: uuid.UUID
    status_url: str
