"""Incidents: alerts of one source and kind grouped into one story (list, read, acknowledge)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query
from pydantic import AfterValidator, BaseModel, ConfigDict

from app.api.authz import READERS, GuardedRoute, require
from app.api.deps import get_incident_service
from app.api.paging import Cursor
from app.api.v1.alerts import KIND_PATTERN, who
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.core.security import Principal, Role
from app.schemas.alerts import AckVia
from app.schemas.incidents import IncidentAckOut, IncidentDetail, IncidentPage
from app.schemas.safety import check_optional_line
from app.services.incidents import IncidentService

router = APIRouter(
    route_class=GuardedRoute,
    prefix=API_PREFIX,
    tags=["incidents"],
    responses=COMMON_ERROR_RESPONSES,
)
Incidents = Annotated[IncidentService, Depends(get_incident_service)]
Operator = Annotated[Principal | None, Depends(require(Role.OPERATOR))]


class IncidentAckIn(BaseModel):
    """Where the acknowledgement comes from (the console says `console`)."""

    model_config = ConfigDict(extra="forbid")

    via: Literal["api", "console"] = "api"


@router.get("/incidents", response_model=IncidentPage, dependencies=[Depends(require(*READERS))])
async def list_incidents(
    service: Incidents,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    kind: Annotated[str | None, Query(pattern=KIND_PATTERN)] = None,
    source_id: Annotated[
        str | None, Query(max_length=128), AfterValidator(check_optional_line)
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> IncidentPage:
    """Incidents newest first: alert count, highest score, updates sent, escalation steps
    written, and who acknowledged it how (api, console or link, and through which channel)."""
    rows, next_cursor = await service.page(
        limit=limit, cursor=cursor, status=status, source_id=source_id, kind=kind
    )
    return IncidentPage(items=rows, next_cursor=next_cursor)


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetail,
    dependencies=[Depends(require(*READERS))],
)
async def get_incident(incident_id: uuid.UUID, service: Incidents) -> IncidentDetail:
    """One incident with its alerts and their deliveries (the first alert's deliveries are
    the incident's messages: notify, update:n, resolve, escalation steps)."""
    return await service.get(incident_id)


@router.post("/incidents/{incident_id}/ack", response_model=IncidentAckOut)
async def acknowledge_incident(
    incident_id: uuid.UUID,
    principal: Operator,
    service: Incidents,
    body: Annotated[IncidentAckIn | None, Body()] = None,
) -> IncidentAckOut:
    """Take the incident: acknowledges its alerts and stops its escalation chain at once
    (steps not yet sent are cancelled). The first acknowledgement stands. Operators and
    admins (in production and staging)."""
    via = AckVia(body.via) if body is not None else AckVia.api
    incident, won = await service.acknowledge(incident_id, who(principal), via)
    return IncidentAckOut(incident=incident, acknowledged=won)
