"""Alert schedules: named recurring intervals for routing rules and recurring silences
(helper-owned module)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.api.authz import ADMINS, READERS, GuardedRoute, container_of, require
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.core.security import Principal
from app.services.alert_schedules import ScheduleList, ScheduleService, ScheduleSet

router = APIRouter(
    route_class=GuardedRoute, prefix=API_PREFIX, tags=["alerts"], responses=COMMON_ERROR_RESPONSES
)


async def get_schedule_service(request: Request) -> ScheduleService:
    container = container_of(request)
    return ScheduleService(container.database(), container.settings().alerts)


Schedules = Annotated[ScheduleService, Depends(get_schedule_service)]
Admin = Annotated[Principal | None, Depends(require(*ADMINS))]


@router.get(
    "/alerts/schedules", response_model=ScheduleList, dependencies=[Depends(require(*READERS))]
)
async def list_schedules(service: Schedules) -> ScheduleList:
    """Every schedule (times in ALERT_TIMEZONE) and whether it runs now."""
    return await service.current()


@router.put("/alerts/schedules", response_model=ScheduleList)
async def put_schedules(_: Admin, service: Schedules, body: ScheduleSet) -> ScheduleList:
    """Replace the whole set of schedules (admin). 409 when a removed one is still named by a
    routing rule or a recurring silence."""
    return await service.replace(body)
