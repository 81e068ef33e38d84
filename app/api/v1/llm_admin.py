"""LLM usage and quota dashboard (admin-only in production)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.authz import ADMINS, GuardedRoute, require
from app.api.v1.prefix import API_PREFIX
from app.api.v1.rag import Rag
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.rag import LLMStats

router = APIRouter(
    route_class=GuardedRoute,
    prefix=f"{API_PREFIX}/admin/llm",
    tags=["admin"],
    responses=COMMON_ERROR_RESPONSES,
    dependencies=[Depends(require(*ADMINS))],
)


@router.get("/stats", response_model=LLMStats)
async def llm_stats(service: Rag) -> LLMStats:
    """Per provider/model: calls, successes, errors split into quota exhaustion, short rate limits
    and other errors, fallbacks, tokens, and a cooling model's reason and cooldown end; cache
    hits/misses and local answers. Counters are shared by every process through Redis."""
    return LLMStats.model_validate(await service.llm_stats())
