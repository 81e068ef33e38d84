"""Alert schedules: named recurring intervals for routing rules and recurring silences
(helper-owned module)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.authz import GuardedRoute
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES

router = APIRouter(
    route_class=GuardedRoute, prefix=API_PREFIX, tags=["alerts"], responses=COMMON_ERROR_RESPONSES
)
