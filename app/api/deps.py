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
from app.services.behavior import BehaviorService
from app.services.events import EventService
from app.services.health import HealthService
from app.services.jobs import JobService
from app.services.kakao import KakaoNotifier
from app.services.knowledge import KnowledgeService
from app.services.rag import RagService
from app.services.silences import SilenceService
from app.services.stream import EventStream
from app.services.usage import UsageService
from app.services.users import UserService


def _container(request: Request) -> Container:
    return request.app.state.container


# The one way routers get services: a dependency per provider, each reading the container
# straight off the app (one dependency level per request, not two).
async def get_settings(request: Request) -> Settings:
    return _container(request).settings()


async def get_user_service(request: Request) -> UserService:
    return _container(request).user_service()


async def get_health_service(request: Request) -> HealthService:
    return _container(request).health_service()


async def get_event_service(request: Request) -> EventService:
    return _container(request).event_service()


async def get_alert_service(request: Request) -> AlertService:
    return _container(request).alert_service()


async def get_route_service(request: Request) -> RouteService:
    return _container(request).alert_routes()


async def get_silence_service(request: Request) -> SilenceService:
    return _container(request).silence_service()


async def get_kakao_notifier(request: Request) -> KakaoNotifier:
    return _container(request).kakao_notifier()


async def get_event_stream(request: Request) -> EventStream:
    return _container(request).event_stream()


async def get_behavior_service(request: Request) -> BehaviorService:
    return _container(request).behavior_service()


async def get_knowledge_service(request: Request) -> KnowledgeService:
    return _container(request).knowledge_service()


async def get_rag_service(request: Request) -> RagService:
    return _container(request).rag_service()


async def get_job_service(request: Request) -> JobService:
    return _container(request).job_service()


async def get_usage_service(request: Request) -> UsageService:
    return _container(request).usage_service()


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
