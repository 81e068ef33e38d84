"""LLM usage, cost and cache statistics per day (admin-only in production)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.authz import ADMINS, GuardedRoute, require
from app.api.deps import get_usage_service
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.usage import UsageStatsOut
from app.services.usage import UsageService

router = APIRouter(
    route_class=GuardedRoute,
    prefix=f"{API_PREFIX}/admin",
    tags=["admin"],
    responses=COMMON_ERROR_RESPONSES,
    dependencies=[Depends(require(*ADMINS))],
)


Usage = Annotated[UsageService, Depends(get_usage_service)]


@router.get("/stats", response_model=UsageStatsOut)
async def usage_stats(
    service: Usage,
    days: Annotated[int, Query(ge=1, le=366, description="Days back, today included")] = 7,
) -> UsageStatsOut:
    """Per day and model: calls, successes, fallbacks, quota exhaustions, tokens in/out and
    estimated cost (`LLM_PRICES`, US dollars per 1M tokens); per day: exact and semantic cache
    hit rates and local answers served."""
    return await service.report(days)
