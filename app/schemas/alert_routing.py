"""Alert routing rules as the API and the routes file carry them (validated the same way from
both); `app.services.alert_routing` applies them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.settings import ALERT_CHANNEL_NAMES

if TYPE_CHECKING:
    from app.services.alert_schedules import ScheduleBook


class RouteKind(StrEnum):
    """What a route selects; recovery notices travel with `source_offline`."""

    abnormal_episode = "abnormal_episode"
    source_offline = "source_offline"
    delivery_failure = "delivery_failure"
    job_failed = "job_failed"
    digest = "digest"


def _channel_names(v: list[str]) -> list[str]:
    names = [c.strip().lower() for c in v]
    unknown = [c for c in names if c != "*" and c not in ALERT_CHANNEL_NAMES]
    if unknown:
        raise ValueError(
            f"unknown channel(s) {', '.join(unknown)}; "
            f"choose from {', '.join(ALERT_CHANNEL_NAMES)} or *"
        )
    return list(dict.fromkeys(names))


MAX_ESCALATION_DELAY = 7 * 86400


class EscalationStep(BaseModel):
    """One step: `after_secs` after the incident's first alert, message these channels."""

    model_config = ConfigDict(extra="forbid")

    after_secs: int = Field(ge=0, le=MAX_ESCALATION_DELAY)
    channels: list[str] = Field(min_length=1, max_length=8)

    @field_validator("channels")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _channel_names(v)


class EscalationChain(BaseModel):
    """Steps in rising `after_secs`; `repeat` = how many more times the whole chain runs
    after its last step (each run shifted by the last step's `after_secs`)."""

    model_config = ConfigDict(extra="forbid")

    steps: list[EscalationStep] = Field(min_length=1, max_length=10)
    repeat: int = Field(0, ge=0, le=10)

    @model_validator(mode="after")
    def _rising(self) -> EscalationChain:
        delays = [s.after_secs for s in self.steps]
        if delays != sorted(delays):
            raise ValueError("escalation steps must be in rising after_secs order")
        if self.repeat and delays[-1] == 0:
            raise ValueError("a repeating chain needs a last step with after_secs above 0")
        return self

    @property
    def total_steps(self) -> int:
        return len(self.steps) * (self.repeat + 1)

    def step(self, number: int) -> tuple[int, EscalationStep]:
        """Step `number` (1-based, across repeats): its delay from the alert, and the step."""
        run, index = divmod(number - 1, len(self.steps))
        step = self.steps[index]
        return run * self.steps[-1].after_secs + step.after_secs, step


class RouteOrigin(StrEnum):
    api = "api"
    file = "file"
    default = "default"


class RouteRule(BaseModel):
    """One rule; validated the same way from the API and from the routes file."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field("*", min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    kinds: list[RouteKind] = Field(default_factory=lambda: list(RouteKind), min_length=1)
    channels: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=8)
    active_during: list[str] = Field(
        default_factory=list, max_length=10, description="Route only while one of these runs."
    )
    inactive_during: list[str] = Field(
        default_factory=list, max_length=10, description="Never route while one of these runs."
    )
    escalation: EscalationChain | None = None
    inhibited_by_offline: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="While this source (id or glob) is offline, alerts from `source` are "
        "recorded as inhibited; such a rule routes nothing.",
    )

    @field_validator("channels")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _channel_names(v)

    @field_validator("active_during", "inactive_during")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(n.strip() for n in v if n.strip()))

    @property
    def inhibits_only(self) -> bool:
        return self.inhibited_by_offline is not None

    @property
    def options(self) -> dict[str, object] | None:
        """What the `options` column stores."""
        data = self.model_dump(
            mode="json",
            include={"active_during", "inactive_during", "escalation", "inhibited_by_offline"},
            exclude_defaults=True,
        )
        return data or None

    def schedule_names(self) -> set[str]:
        return {*self.active_during, *self.inactive_during}

    def in_time(self, now: datetime, schedules: ScheduleBook) -> bool:
        if self.active_during and not any(schedules.is_active(n, now) for n in self.active_during):
            return False
        return not any(schedules.is_active(n, now) for n in self.inactive_during)

    def matches(
        self, kind: RouteKind, source_id: str, now: datetime, schedules: ScheduleBook
    ) -> bool:
        return (
            not self.inhibits_only
            and kind in self.kinds
            and fnmatchcase(source_id, self.source)
            and self.in_time(now, schedules)
        )
