"""Silences: quiet a camera under maintenance; matching alerts are recorded as `silenced`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.api.authz import ADMINS, READERS, GuardedRoute, require
from app.api.deps import get_silence_service
from app.api.v1.alerts import who
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.core.security import Principal
from app.models.base import utcnow
from app.schemas.alerts import SilenceIn, SilenceList, SilenceOut
from app.services.silences import SilenceService

router = APIRouter(
    route_class=GuardedRoute, prefix=API_PREFIX, tags=["alerts"], responses=COMMON_ERROR_RESPONSES
)

Silences = Annotated[SilenceService, Depends(get_silence_service)]
Admin = Annotated[Principal | None, Depends(require(*ADMINS))]


@router.post("/silences", response_model=SilenceOut, status_code=status.HTTP_201_CREATED)
async def create_silence(principal: Admin, service: Silences, body: SilenceIn) -> SilenceOut:
    """Silence alerts from sources matching a glob until a time (admin in production)."""
    row = await service.create(body.source_id, body.until, body.reason, who(principal))
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
    """End a silence now (admin in production)."""
    await service.delete(silence_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
