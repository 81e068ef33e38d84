"""FastAPI dependencies backed by the container on `app.state.container`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.authz import oauth2_scheme, resolve_principal
from app.container import Container
from app.core.errors import Forbidden, Unauthorized
from app.core.security import Principal
from app.core.settings import Settings
from app.middleware.auth import MSG_MISSING
from app.models.user import User
from app.services.alert_routing import RouteService
from app.services.alerts import AlertService
from app.services.events import EventService
from app.services.health import HealthService
from app.services.kakao import KakaoNotifier
from app.services.silences import SilenceService
from app.services.stream import EventStream
from app.services.users import UserService


async def get_container(request: Request) -> Container:
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_settings(container: ContainerDep) -> Settings:
    return container.settings()


async def get_user_service(container: ContainerDep) -> UserService:
    return container.user_service()


async def get_health_service(container: ContainerDep) -> HealthService:
    return container.health_service()


async def get_event_service(container: ContainerDep) -> EventService:
    return container.event_service()


async def get_alert_service(container: ContainerDep) -> AlertService:
    return container.alert_service()


async def get_route_service(container: ContainerDep) -> RouteService:
    return container.alert_routes()


async def get_silence_service(container: ContainerDep) -> SilenceService:
    return container.silence_service()


async def get_kakao_notifier(container: ContainerDep) -> KakaoNotifier:
    return container.kakao_notifier()


async def get_event_stream(container: ContainerDep) -> EventStream:
    return container.event_stream()


async def get_principal(request: Request) -> Principal:
    """The caller (any valid token); 401 without one, in every environment."""
    principal = await resolve_principal(request)
    if principal is None:
        raise Unauthorized(MSG_MISSING)
    return principal


async def get_current_user(
    principal: Annotated[Principal, Depends(get_principal)],
    users: Annotated[UserService, Depends(get_user_service)],
    _token: Annotated[str | None, Depends(oauth2_scheme)],
) -> User:
    """The signed-in account (a user token; the service token is not a user)."""
    if not principal.is_user or principal.user_id is None:
        raise Forbidden("This endpoint needs a user token; the service token is not a user")
    return await users.get(principal.user_id)


CurrentUser = Annotated[User, Depends(get_current_user)]
