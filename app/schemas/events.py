"""Request and response bodies for events, sources and episodes."""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.schemas.learning import EpisodeFeedback, FeedbackOutcome
from app.schemas.safety import BoundedJson

# strict: JSON true/false are not numbers (lax mode would read them as 1.0/0.0).
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]


def _iso_only(value: Any) -> Any:
    if isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.\d*)?\s*", value)
    ):
        raise PydanticCustomError(
            "iso_datetime_expected",
            "expected an ISO 8601 date-time with a zone, e.g. 2026-11-25T10:00:00Z",
        )
    return value


DATETIME_RANGE_HINT = "between 0001-01-02T00:00:00Z and 9999-12-30T23:59:59Z"


def _representable_in_utc(value: datetime) -> datetime:
    """Refuse instants that cannot be converted to UTC (0001-01-01T00:00+14:00 would be year 0).

    A day of margin on both ends keeps arithmetic near the edges (offsets, windows) in range.
    """
    if value.tzinfo is None:
        return value  # naive values are refused with their own message where a zone is needed
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not (
        datetime(1, 1, 2, tzinfo=UTC) <= utc < datetime(9999, 12, 31, tzinfo=UTC)
    ):
        raise PydanticCustomError(
            "datetime_out_of_range",
            "date-time out of range: give an instant {range}",
            {"range": DATETIME_RANGE_HINT},
        )
    return value


# Query filters: an ISO 8601 date-time, not a bare number (lax mode reads those as epochs).
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_representable_in_utc)]


# Characters a label must not carry: controls, format characters (zero-width, bidi overrides)
# and line/paragraph separators. Labels reach alert subjects, Slack and logs; U+2028 broke
# e-mail delivery and invisible characters make two labels look the same.
_LABEL_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def check_label(label: str) -> str:
    """A `probs` label: 1 to 64 visible characters (spaces allowed), nothing invisible."""
    if not label or len(label) > 64:
        raise ValueError("probs labels must be 1 to 64 characters long")
    for pos, char in enumerate(label):
        if unicodedata.category(char) in _LABEL_REFUSED:
            raise ValueError(
                f"probs label has an invisible or control character (U+{ord(char):04X}) at "
                f"position {pos}; use visible text on one line"
            )
    return label


class EventType(StrEnum):
    """What an agent reports: an episode starts, sends probabilities, ends, or it is alive."""

    START = "START"
    END = "END"
    PROBS = "PROBS"
    HEARTBEAT = "HEARTBEAT"


class EventIn(BaseModel):
    """One event from a video-analytics agent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    # No event_id: a fixed one would make every repeat a duplicate.
                    # A PROBS with no open episode is stored on its own: no episode closes,
                    # so trying it never raises an alert. Labels are the shipped model's.
                    "source_id": "cam-lobby-1",
                    "event_type": "PROBS",
                    "timestamp": "2026-11-25T01:02:03+09:00",
                    "probs": {
                        "walking": 0.82,
                        "standing": 0.12,
                        "running": 0.04,
                        "badminton": 0.02,
                    },
                    "metadata": {"fps": 15},
                }
            ]
        }
    )

    event_id: uuid.UUID | None = Field(
        default=None, description="Idempotency key: a repeated id returns the original"
    )
    source_id: str = Field(min_length=1, max_length=128, description="Camera or agent id")
    event_type: EventType
    timestamp: Annotated[
        AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_representable_in_utc)
    ] = Field(description="ISO 8601 with a zone, e.g. ...+09:00 or ...Z")
    probs: dict[str, FiniteFloat] | None = Field(
        default=None, description="Label → probability in [0, 1]"
    )
    sequence: list[list[FiniteFloat]] | None = Field(
        default=None, description="Optional frame-wise feature vectors for the behaviour model"
    )
    metadata: BoundedJson | None = Field(
        default=None,
        description="Free-form JSON: at most 16 levels deep, 1,000 keys, no NUL characters",
    )

    @field_validator("event_type", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("source_id")
    @classmethod
    def _clean_source(cls, v: str) -> str:
        v = v.strip()
        if not v or any(ord(c) < 32 for c in v):
            raise ValueError("source_id must be non-empty printable text")
        return v

    @field_validator("probs")
    @classmethod
    def _probabilities(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        if len(v) > 64:
            raise ValueError(f"probs has {len(v)} labels; at most 64 are accepted")
        for label, p in v.items():
            check_label(label)
            if not (0.0 <= p <= 1.0) or math.isnan(p):
                raise ValueError(f"probability of {label!r} is {p}; it must be between 0 and 1")
        return v

    @field_validator("sequence")
    @classmethod
    def _rectangular(cls, v: list[list[float]] | None) -> list[list[float]] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("sequence is empty; send at least one frame or leave it out")
        width = len(v[0])
        if width == 0:
            raise ValueError("sequence frames are empty; each frame needs its feature values")
        for i, frame in enumerate(v):
            if len(frame) != width:
                raise ValueError(
                    f"sequence frame {i} has {len(frame)} features; frame 0 has {width} "
                    "(every frame must have the same number)"
                )
        return v


class EventBatchIn(BaseModel):
    """Events an agent buffered while offline; validated all together before anything is stored."""

    events: list[EventIn] = Field(min_length=1)


class EventAccepted(BaseModel):
    """The stored event, or the original one when `event_id` was seen before."""

    id: uuid.UUID
    episode_id: uuid.UUID | None
    duplicate: bool


class EventBatchAccepted(BaseModel):
    """Per-event results, in the order sent."""

    results: list[EventAccepted]
    accepted: int
    duplicates: int


class EventOut(BaseModel):
    """A stored event."""

    id: uuid.UUID
    source_id: str
    event_type: str
    timestamp: datetime
    received_at: datetime
    probs: dict[str, float] | None = None
    metadata: dict[str, Any] | None = None
    sequence_length: int | None = None
    episode_id: uuid.UUID | None = None


class EventPage(BaseModel):
    """A page of events, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[EventOut]
    next_cursor: str | None


class RecentEvents(BaseModel):
    """The newest events, newest first, and where they were read from."""

    items: list[EventOut]
    served_from: str = Field(description="redis or database")


class SourceOut(BaseModel):
    """A camera/agent and whether it has been heard from recently."""

    source_id: str
    first_seen: datetime
    last_seen: datetime
    last_event_type: str | None
    last_event_at: datetime | None
    online: bool
    seconds_since_seen: float


class SourceList(BaseModel):
    items: list[SourceOut]
    offline_after_secs: int


class EpisodeOut(BaseModel):
    """An episode and, once closed, its decision."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source_id: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    close_reason: str | None
    event_count: int
    probs_count: int
    out_of_order: int
    decision: str | None
    decided_by: str | None
    anomaly_score: float | None
    threshold: float | None
    top_label: str | None
    scores: dict[str, float] | None
    model_version: str | None
    sequence_length: int | None = Field(
        None, description="Frames stored for the model (the frames themselves are not listed)"
    )
    alert_id: uuid.UUID | None = None
    alert_status: str | None = None
    feedback: EpisodeFeedback | None = Field(None, description="An operator's label, if any")
    feedback_outcome: FeedbackOutcome | None = Field(
        None, description="false_alarm, miss, confirmed or undecided (with feedback only)"
    )


class EpisodePage(BaseModel):
    items: list[EpisodeOut]
    next_cursor: str | None


class EpisodeDetail(EpisodeOut):
    """One episode with its events, newest first (`events_limit` of them; the rest through
    `GET /api/v1/events?episode_id=…&cursor=events_next_cursor`)."""

    events: list[EventOut] = Field(default_factory=list)
    events_next_cursor: str | None = Field(
        None, description="Pass as `cursor` to GET /api/v1/events?episode_id=… for the rest"
    )


@dataclass(frozen=True)
class EventFilter:
    """Which events a list holds; a field left None does not filter."""

    source_id: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    episode_id: uuid.UUID | None = None


@dataclass(frozen=True)
class EpisodeFilter:
    """Which episodes a list holds; a field left None does not filter."""

    source_id: str | None = None
    status: str | None = None
    decision: str | None = None
