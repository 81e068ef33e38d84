"""Request and response bodies for the knowledge assistant."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models.feedback import Rating
from app.schemas.safety import SafeText


class CooldownReason(StrEnum):
    """Why a model gets no calls for a while."""

    quota_exhausted = "quota_exhausted"  # per-day or billing quota spent
    rate_limited = "rate_limited"  # a short limit whose retry delay exceeds the backoff cap


class AskRequest(BaseModel):
    """A question for the knowledge assistant."""

    question: SafeText = Field(
        min_length=1, max_length=2000, examples=["What does a fall alert require us to do?"]
    )
    top_k: int = Field(5, ge=1, le=20)
    conversation_id: uuid.UUID | None = None

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank; ask a question")
        return v


class Source(BaseModel):
    """A retrieved passage the answer is grounded in."""

    doc_id: str
    title: str
    chunk: str
    score: float
    section: str | None = Field(
        None, description="heading path of the passage, e.g. `설치 › 의존성 설치`"
    )
    start: int | None = Field(None, description="character offset of the passage in the document")
    end: int | None = Field(None, description="offset just past the passage's last character")
    page: int | None = Field(
        None, description="page the passage starts on (1-based), for documents from a PDF"
    )


class AttemptOut(BaseModel):
    """One step of the model chain."""

    provider: str
    model: str
    outcome: str = Field(
        description="ok, transient_error, quota_exhausted, auth_error, bad_request, "
        "skipped_cooling, skipped_disabled"
    )
    ms: float


class AskResponse(BaseModel):
    """An answer with its sources and where it came from."""

    answer: str
    sources: list[Source]
    provider: str = Field(description="gemini, openai, local (extracted) or cache")
    model: str
    cached: bool
    degraded: bool
    notice: str | None
    attempts: list[AttemptOut]
    conversation_id: uuid.UUID | None
    usage: dict[str, int] = Field(default_factory=dict)
    found: bool = Field(
        True,
        description="false when nothing in the knowledge base answers the question (no model "
        "was asked); `suggestions` then names the closest documents",
    )
    suggestions: list[str] = Field(default_factory=list, description="closest document titles")
    turn_id: uuid.UUID | None = Field(
        None,
        description="The recorded answer, for `POST …/turns/{turn_id}/feedback`; null for a "
        "cached answer outside a conversation (nothing was recorded)",
    )


class FeedbackRequest(BaseModel):
    """👍 or 👎 on one answer, with an optional comment and the document that should have
    answered (a 👎 with `doc_id` becomes a retrieval-eval question)."""

    rating: Rating = Field(examples=["down"])
    comment: SafeText | None = Field(
        None, max_length=2000, examples=["낙상 알림 절차 문서의 2분 규칙이 빠졌습니다"]
    )
    doc_id: uuid.UUID | None = Field(
        None, description="id of the knowledge document that should have answered"
    )


class FeedbackOut(BaseModel):
    """The rating an answer has (rating again replaces it; `updated_at` says when)."""

    model_config = ConfigDict(from_attributes=True)

    turn_id: uuid.UUID
    rating: Rating
    comment: str | None
    doc_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class TurnOut(BaseModel):
    """One question and its answer, with the asker's rating if they gave one."""

    model_config = ConfigDict(from_attributes=True)

    turn_id: uuid.UUID = Field(validation_alias="id")
    question: str
    answer: str
    provider: str
    model: str
    degraded: bool
    sources: list[dict[str, Any]] = Field(validation_alias="source_items")
    created_at: datetime
    feedback: FeedbackOut | None = None


class ConversationSummary(BaseModel):
    """One of your conversations."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    title: str | None = Field(None, description="the first question (up to 120 characters)")


class ConversationOut(BaseModel):
    """A conversation and its turns, oldest first."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    turns: list[TurnOut]


class CooldownOut(BaseModel):
    """Why a model gets no calls, and when that ends."""

    model_config = ConfigDict(from_attributes=True)

    reason: CooldownReason = Field(
        description="`quota_exhausted` (daily or billing quota spent) or `rate_limited` "
        "(a short limit whose retry delay is longer than the backoff cap)"
    )
    detail: str | None = Field(
        None, description="The provider's quota id, e.g. GenerateRequestsPerDayPerProjectPerModel"
    )
    until: datetime = Field(description="When the cooldown ends (UTC)")
    remaining_secs: float


class ModelStats(BaseModel):
    """One model's counters and state."""

    model_config = ConfigDict(from_attributes=True)

    provider: str
    model: str
    calls: int = 0
    successes: int = 0
    errors: int = Field(
        0, description="Failed calls: quota_exhausted + rate_limited + other_errors"
    )
    quota_exhausted: int = Field(0, description="Calls refused because the quota is spent")
    rate_limited: int = Field(
        0, description="Calls refused by a short (per-minute/second) rate limit"
    )
    other_errors: int = Field(
        0, description="5xx, timeouts, connection errors, auth errors and bad requests"
    )
    fallbacks: int = 0
    served_as_fallback: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cooldown_remaining_secs: float = 0.0
    cooldown: CooldownOut | None = Field(None, description="Set while the model is cooling down")
    disabled: str | None = None


class CacheStats(BaseModel):
    """Answer-cache counters."""

    model_config = ConfigDict(from_attributes=True)

    exact_hits: int
    semantic_hits: int
    misses: int


class LLMStats(BaseModel):
    """Usage and quota dashboard."""

    model_config = ConfigDict(from_attributes=True)

    chain: list[str]
    models: list[ModelStats]
    cache: CacheStats
    local_answers: int
