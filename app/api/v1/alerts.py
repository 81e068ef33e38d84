"""Alerts (list, read, acknowledge), routing, and the Kakao debug endpoints."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator

from app.api.authz import ADMINS, READERS, GuardedRoute, require
from app.api.deps import (
    get_alert_service,
    get_kakao_notifier,
    get_route_service,
    get_settings,
)
from app.api.paging import Cursor
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.core.security import Principal, Role
from app.core.settings import Settings
from app.schemas.alerts import (
    AlertKind,
    AlertOut,
    AlertPage,
    AlertStatus,
    RoutesIn,
    RoutesOut,
    SendTestIn,
    SendTestOut,
    TokenCheckOut,
)
from app.schemas.safety import check_optional_line
from app.services.alert_routing import RouteService, RouteTable
from app.services.alerts import AlertService
from app.services.kakao import KakaoNotifier

router = APIRouter(
    route_class=GuardedRoute, prefix=API_PREFIX, tags=["alerts"], responses=COMMON_ERROR_RESPONSES
)
debug_router = APIRouter(
    route_class=GuardedRoute,
    prefix=f"{API_PREFIX}/debug/kakao",
    tags=["debug"],
    responses=COMMON_ERROR_RESPONSES,
    dependencies=[Depends(require(*ADMINS))],
)
Admin = Annotated[Principal | None, Depends(require(*ADMINS))]
Operator = Annotated[Principal | None, Depends(require(Role.OPERATOR))]

Alerts = Annotated[AlertService, Depends(get_alert_service)]
Routes = Annotated[RouteService, Depends(get_route_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Notifier = Annotated[KakaoNotifier, Depends(get_kakao_notifier)]

DEFAULT_TEST_TEXT = "[Sentinel] Test memo: Kakao alerts are working."
STATUS_PATTERN = f"^({'|'.join(AlertStatus)})$"
KIND_PATTERN = f"^({'|'.join(AlertKind)})$"


def who(principal: Principal | None) -> str:
    """How an acknowledgement names its author (no personal data beyond the account id)."""
    if principal is None:
        return "anonymous (development)"
    return f"user:{principal.user_id}" if principal.kind == "user" else principal.kind


@router.get("/alerts", response_model=AlertPage, dependencies=[Depends(require(*READERS))])
async def list_alerts(
    service: Alerts,
    status: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
    kind: Annotated[str | None, Query(pattern=KIND_PATTERN)] = None,
    source_id: Annotated[
        str | None, Query(max_length=128), AfterValidator(check_optional_line)
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlertPage:
    """Alerts newest first with status, per-channel deliveries, attempts and the last error."""
    rows, next_cursor = await service.page(
        limit=limit, cursor=cursor, status=status, source_id=source_id, kind=kind
    )
    return AlertPage(items=rows, next_cursor=next_cursor)


def _routes_out(table: RouteTable, settings: Settings) -> RoutesOut:
    return RoutesOut(
        origin=table.origin,
        enabled_channels=table.enabled,
        escalation_channels=settings.alerts.escalation_channel_names,
        escalate_after_secs=settings.alerts.escalate_after_secs,
        rules=table.rules,
    )


@router.get("/alerts/routes", response_model=RoutesOut, dependencies=[Depends(require(*READERS))])
async def get_routes(routes: Routes, settings: SettingsDep) -> RoutesOut:
    """Which channels get which alerts (source glob × kind), and where the rules come from."""
    return _routes_out(await routes.current(), settings)


@router.put("/alerts/routes", response_model=RoutesOut)
async def put_routes(_: Admin, routes: Routes, settings: SettingsDep, body: RoutesIn) -> RoutesOut:
    """Replace the routing rules (admin in production); `{"rules": []}` restores the
    file or default routing."""
    return _routes_out(await routes.replace(body.rules), settings)


@router.get(
    "/alerts/{alert_id}", response_model=AlertOut, dependencies=[Depends(require(*READERS))]
)
async def get_alert(alert_id: uuid.UUID, service: Alerts) -> AlertOut:
    """One alert with its deliveries."""
    return await service.get(alert_id)


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut)
async def acknowledge_alert(alert_id: uuid.UUID, principal: Operator, service: Alerts) -> AlertOut:
    """Say "I'm on it": records who and when (the first acknowledgement stands) and stops
    the escalation step. Operators and admins (in production and staging)."""
    return await service.acknowledge(alert_id, who(principal))


@debug_router.get("/token-check", response_model=TokenCheckOut)
async def token_check(notifier: Notifier) -> TokenCheckOut:
    """Ask Kakao whether the stored access token works (refreshing once if expired)."""
    return await notifier.token_check()


@debug_router.post("/send-test", response_model=SendTestOut)
async def send_test(notifier: Notifier, body: SendTestIn | None = None) -> SendTestOut:
    """Send a "to me" memo right now (not through the outbox)."""
    text = (body.text if body and body.text else None) or DEFAULT_TEST_TEXT
    await notifier.send_text(text)
    return SendTestOut(sent=True, text=text)
