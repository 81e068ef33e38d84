"""Silences: quiet a camera under maintenance; matching alerts are recorded as `silenced`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.api.authz import ADMINS, READERS, GuardedRoute, require
from app.api.deps import get_silence_service
from app.api.v1.alerts import who
from app.api.v1.prefix import API_PREFIX
from app.core.clock import utcnow
from app.core.errors import COMMON_ERROR_RESPONSES, Forbidden
from app.core.security import Principal, Role
from app.schemas.alerts import SilenceIn, SilenceList, SilenceOut
from app.services.silences import SilenceService

router = APIRouter(
    route_class=GuardedRoute, prefix=API_PREFIX, tags=["alerts"], responses=COMMON_ERROR_RESPONSES
)

Silences = Annotated[SilenceService, Depends(get_silence_service)]
Admin = Annotated[Principal | None, Depends(require(*ADMINS))]


Operator = Annotated[Principal | None, Depends(require(Role.OPERATOR))]
# How long an operator may silence on their own (the console's "silence this source").
OPERATOR_MAX_SILENCE = timedelta(hours=24)


@router.post("/silences", response_model=SilenceOut, status_code=status.HTTP_201_CREATED)
async def create_silence(principal: Operator, service: Silences, body: SilenceIn) -> SilenceOut:
    """Silence alerts from sources matching a glob until a time, or whenever a schedule runs.
    Operators may set one-off silences of up to 24 hours; longer and recurring ones are for
    admins (in production and staging)."""
    beyond_operator = body.schedule is not None or (
        body.until is not None and body.until - utcnow() > OPERATOR_MAX_SILENCE
    )
    if principal is not None and not principal.has(Role.ADMIN) and beyond_operator:
        raise Forbidden(
            "operators may silence for at most 24 hours; ask an admin for a longer or "
            "recurring silence"
        )
    row = await service.create(
        body.source_id, body.until, body.reason, who(principal), schedule=body.schedule
    )
    return SilenceOut.model_validate(row)


@router.get("/silences", response_model=SilenceList, dependencies=[Depends(require(*READERS))])
async def list_silences(
    service: Silences, include_expired: Annotated[bool, Query()] = False
) -> SilenceList:
    """Active silences (and ended ones with `include_expired=true`), newest first."""
    now = utcnow()
    items = []
    for row in await service.list(include_expired):
        out = SilenceOut.model_validate(row)
        out.active = row.starts_at <= now and (row.ends_at is None or now < row.ends_at)
        items.append(out)
    return SilenceList(items=items)


@router.delete(
    "/silences/{silence_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def delete_silence(silence_id: uuid.UUID, _: Admin, service: Silences) -> Response:
    """End a silence now; it stays listed with `include_expired=true`. 404 if unknown or
    already ended (admin in production)."""
    await service.end(silence_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
