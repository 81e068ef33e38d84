"""Request and response bodies for alerts, routes, silences and the Kakao debug endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# The API's words for an alert's kind and status, and how an incident was acknowledged.
from app.models.alert import AckVia as AckVia
from app.models.alert import AlertKind as AlertKind
from app.models.alert import AlertStatus as AlertStatus
from app.schemas.alert_routing import RouteOrigin, RouteRule
from app.schemas.safety import SafeText

# Text that people type and that ends up in listings: no control characters.
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"


class DeliveryOut(BaseModel):
    """One channel's delivery: pending → sending → sent | failed | undeliverable."""

    model_config = ConfigDict(from_attributes=True)

    channel: str
    stage: str = Field(description="notify (first message) or escalation")
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    updated_at: datetime


class AlertOut(BaseModel):
    """One alert. `status` summarises its first-stage deliveries (pending, sending, sent,
    partial, failed, undeliverable) or says why it has none (suppressed, silenced)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    episode_id: uuid.UUID | None
    source_id: str
    status: str
    label: str | None
    score: float | None
    occurred_at: datetime | None
    text: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None
    acked_by: str | None
    escalated_at: datetime | None
    incident_id: uuid.UUID | None = Field(
        None, description="The incident it opened or joined (abnormal and offline alerts)"
    )
    inhibited_by: uuid.UUID | None = Field(
        None, description="The offline gateway's alert that inhibited it"
    )
    data: dict[str, Any] | None = Field(
        None, description="Details of summary kinds: held-back counts, the digest's figures"
    )
    deliveries: list[DeliveryOut]


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class RoutesIn(BaseModel):
    """The full rule list; an empty list returns to ALERT_ROUTES_FILE or the default."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RouteRule] = Field(max_length=100)


class RoutesOut(BaseModel):
    """The effective routing and where it comes from (api, file or default)."""

    origin: RouteOrigin
    enabled_channels: list[str]
    escalation_channels: list[str]
    escalate_after_secs: int
    rules: list[RouteRule]


class SilenceIn(BaseModel):
    """Silence alerts from sources matching `source_id` (a glob: `cam-*`): until `until`
    (one-off), or whenever schedule `schedule` runs (recurring, until ended). Exactly one."""

    model_config = ConfigDict(extra="forbid")

    source_id: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    until: AwareDatetime | None = None
    schedule: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="A schedule's name."
    )
    reason: str = Field("", max_length=500, pattern=_NO_CONTROL)

    @model_validator(mode="after")
    def _one_kind(self) -> SilenceIn:
        if self.until is not None and self.schedule is not None:
            raise ValueError(
                "give either until (a one-off silence) or schedule (a recurring one), not both"
            )
        if self.until is None and self.schedule is None:
            raise ValueError("give until (a one-off silence) or schedule (a recurring one)")
        return self


class SilenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source_id: str = Field(validation_alias="source_pattern")
    starts_at: datetime
    until: datetime | None = Field(
        validation_alias="ends_at",
        description="When it ends (or ended); null for a recurring silence not yet ended.",
    )
    schedule: str | None = None
    reason: str
    created_by: str | None
    created_at: datetime
    active: bool = Field(True, description="Not ended yet (a recurring one may be idle now).")


class SilenceList(BaseModel):
    items: list[SilenceOut]


class SendTestIn(BaseModel):
    """Optional text for the test memo."""

    text: SafeText | None = Field(default=None, max_length=200)


class SendTestOut(BaseModel):
    sent: bool
    text: str


class TokenCheckOut(BaseModel):
    """Whether the stored Kakao access token works; the token itself is never returned."""

    configured: bool
    valid: bool
    expires_in: int | None = None
    app_id: int | None = None
    user_id: int | None = None
    refreshed: bool = False
    error: str | None = None
