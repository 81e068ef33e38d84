"""Request and response bodies for the knowledge assistant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas.safety import SafeText


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


class TurnOut(BaseModel):
    question: str
    answer: str
    provider: str
    model: str
    degraded: bool
    sources: list[dict[str, Any]]
    created_at: datetime


class ConversationSummary(BaseModel):
    """One of your conversations."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime


class ConversationOut(BaseModel):
    """A conversation and its turns, oldest first."""

    id: uuid.UUID
    created_at: datetime
    turns: list[TurnOut]


class ModelStats(BaseModel):
    provider: str
    model: str
    calls: int = 0
    successes: int = 0
    rate_limited: int = 0
    errors: int = 0
    fallbacks: int = 0
    served_as_fallback: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cooldown_remaining_secs: float = 0.0
    disabled: str | None = None


class LLMStats(BaseModel):
    """Usage and quota dashboard."""

    chain: list[str]
    models: list[ModelStats]
    cache: dict[str, int]
    local_answers: int
