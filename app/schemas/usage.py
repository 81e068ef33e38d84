"""Response body of `GET /api/v1/admin/stats`."""

from __future__ import annotations

from datetime import date

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class ModelDayOut(BaseModel):
    """One model's usage on one UTC day; cost estimated from `LLM_PRICES`."""

    model_config = ConfigDict(from_attributes=True)

    day: date
    provider: str
    model: str
    calls: int
    successes: int
    errors: int
    fallbacks: int = Field(description="Times this model failed and the chain moved on")
    quota_exhaustions: int = Field(
        validation_alias=AliasChoices("quota_exhaustions", "quota_exhausted")
    )
    tokens_in: int
    tokens_out: int
    cost_usd: float


class CacheDayOut(BaseModel):
    """Answer cache lookups and local answers on one UTC day."""

    model_config = ConfigDict(from_attributes=True)

    day: date
    exact_hits: int
    semantic_hits: int
    misses: int
    exact_hit_rate: float
    semantic_hit_rate: float
    local_answers: int = Field(description="Answers extracted locally (no model could answer)")


class UsageStatsOut(BaseModel):
    """LLM usage and cost per day and model over the last `days` days (UTC, today included)."""

    model_config = ConfigDict(from_attributes=True)

    days: int
    since: date
    until: date
    models: list[ModelDayOut]
    cache: list[CacheDayOut]
    total_calls: int
    total_cost_usd: float
    monthly_budget_usd: float
