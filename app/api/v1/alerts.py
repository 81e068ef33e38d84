"""Alerts and the Kakao debug endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator

from app.api.authz import ADMINS, READERS, require
from app.api.deps import get_alert_service, get_kakao_notifier
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.alerts import AlertOut, AlertPage, SendTestIn, SendTestOut, TokenCheckOut
from app.schemas.safety import check_optional_line
from app.services.alerts import AlertService, KakaoNotifier

router = APIRouter(tags=["alerts"], responses=COMMON_ERROR_RESPONSES)
debug_router = APIRouter(
    prefix="/debug/kakao",
    tags=["debug"],
    responses=COMMON_ERROR_RESPONSES,
    dependencies=[Depends(require(*ADMINS))],
)

Alerts = Annotated[AlertService, Depends(get_alert_service)]
Notifier = Annotated[KakaoNotifier, Depends(get_kakao_notifier)]

DEFAULT_TEST_TEXT = "[Sentinel] Test memo: Kakao alerts are working."


@router.get("/alerts", response_model=AlertPage, dependencies=[Depends(require(*READERS))])
async def list_alerts(
    service: Alerts,
    status: Annotated[
        str | None, Query(pattern="^(pending|sending|sent|failed|suppressed|undeliverable)$")
    ] = None,
    source_id: Annotated[
        str | None, Query(max_length=128), AfterValidator(check_optional_line)
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlertPage:
    """Alerts newest first with status, attempts and the last error."""
    rows, next_cursor = await service.page(
        limit=limit, cursor=cursor, status=status, source_id=source_id
    )
    return AlertPage(items=[AlertOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@debug_router.get("/token-check", response_model=TokenCheckOut)
async def token_check(notifier: Notifier) -> TokenCheckOut:
    """Ask Kakao whether the stored access token works (refreshing once if expired)."""
    return TokenCheckOut(**await notifier.token_check())


@debug_router.post("/send-test", response_model=SendTestOut)
async def send_test(notifier: Notifier, body: SendTestIn | None = None) -> SendTestOut:
    """Send a "to me" memo right now (not through the outbox)."""
    text = (body.text if body and body.text else None) or DEFAULT_TEST_TEXT
    await notifier.send(text)
    return SendTestOut(sent=True, text=text)
