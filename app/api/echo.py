"""`POST /echo`: returns its JSON body (development and staging only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

router = APIRouter(tags=["debug"])


@router.post("/echo")
async def echo(body: Any = Body(default=None)) -> Any:
    """Send any JSON; get it back unchanged."""
    return body
