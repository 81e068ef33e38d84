"""Response bodies for incidents."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.alerts import AlertOut


class IncidentOut(BaseModel):
    """Alerts of one source and kind close together: one first message, at most one update
    per INCIDENT_UPDATE_INTERVAL_SECS, one resolve message."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source_id: str
    kind: str
    status: str = Field(description="open or resolved")
    opened_at: datetime
    last_alert_at: datetime
    resolved_at: datetime | None
    alert_count: int
    max_score: float | None
    label: str | None
    first_alert_id: uuid.UUID | None
    updates_sent: int
    escalation_steps_done: int
    escalation_next_at: datetime | None = Field(
        None, description="When the next escalation step is due (null: none left, or acked)"
    )
    acked_at: datetime | None
    acked_by: str | None
    acked_via: str | None = Field(description="api, console or link")
    acked_channel: str | None = Field(description="The channel whose link acknowledged it")


class IncidentDetail(IncidentOut):
    """An incident with its alerts (oldest first) and each alert's deliveries: the first
    alert's deliveries are the incident's messages (notify, update:n, resolve, escalation…)."""

    alerts: list[AlertOut]


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None


class IncidentAckOut(BaseModel):
    """The incident after the acknowledgement; `acknowledged` is false when someone had
    already acknowledged it (the first acknowledgement stands)."""

    incident: IncidentDetail
    acknowledged: bool
