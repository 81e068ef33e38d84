"""`POST /echo`: returns its JSON body (development and staging only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from app.api.authz import READERS, GuardedRoute, require

router = APIRouter(route_class=GuardedRoute, tags=["debug"])


@router.post("/echo", dependencies=[Depends(require(*READERS))])
async def echo(body: Any = Body(default=None)) -> Any:
    """Send any JSON; get it back unchanged."""
    return body
