"""Response bodies for alerts and the Kakao debug endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.safety import SafeText


class AlertOut(BaseModel):
    """One outbox row: pending → sending → sent | failed | undeliverable, or suppressed."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    episode_id: uuid.UUID
    source_id: str
    status: str
    label: str | None
    score: float | None
    text: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


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
