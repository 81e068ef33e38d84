"""FastAPI dependencies backed by the container on `app.state.container`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.authz import container_of, oauth2_scheme, resolve_principal
from app.core.errors import Forbidden, Unauthorized
from app.core.security import Principal
from app.core.settings import Settings
from app.middleware.auth import MSG_MISSING
from app.schemas.users import User
from app.services.agents import AgentService, SourceRegistry
from app.services.alert_routing import RouteService
from app.services.alerts import AlertService
from app.services.answer_feedback import FeedbackService
from app.services.behavior import BehaviorService
from app.services.episode_feedback import EpisodeFeedbackService
from app.services.events import EventService
from app.services.health import HealthService
from app.services.incidents import IncidentService
from app.services.jobs import JobService
from app.services.kakao import KakaoNotifier
from app.services.knowledge import KnowledgeService
from app.services.model_registry import ModelRegistry
from app.services.rag import RagService
from app.services.silences import SilenceService
from app.services.stream import EventStream
from app.services.usage import UsageService
from app.services.users import UserService


# The one way routers get services: a dependency per provider, each reading the container
# straight off the app (one dependency level per request, not two).
async def get_settings(request: Request) -> Settings:
    return container_of(request).settings()


async def get_user_service(request: Request) -> UserService:
    return container_of(request).user_service()


async def get_health_service(request: Request) -> HealthService:
    return container_of(request).health_service()


async def get_event_service(request: Request) -> EventService:
    return container_of(request).event_service()


async def get_agent_service(request: Request) -> AgentService:
    return container_of(request).agent_service()


async def get_source_registry(request: Request) -> SourceRegistry:
    return container_of(request).source_registry()


async def get_alert_service(request: Request) -> AlertService:
    return container_of(request).alert_service()


async def get_route_service(request: Request) -> RouteService:
    return container_of(request).alert_routes()


async def get_silence_service(request: Request) -> SilenceService:
    return container_of(request).silence_service()


async def get_incident_service(request: Request) -> IncidentService:
    return container_of(request).incident_service()


async def get_kakao_notifier(request: Request) -> KakaoNotifier:
    return container_of(request).kakao_notifier()


async def get_event_stream(request: Request) -> EventStream:
    return container_of(request).event_stream()


async def get_behavior_service(request: Request) -> BehaviorService:
    return container_of(request).behavior_service()


async def get_knowledge_service(request: Request) -> KnowledgeService:
    return container_of(request).knowledge_service()


async def get_rag_service(request: Request) -> RagService:
    return container_of(request).rag_service()


async def get_feedback_service(request: Request) -> FeedbackService:
    return container_of(request).feedback_service()


async def get_episode_feedback(request: Request) -> EpisodeFeedbackService:
    return container_of(request).episode_feedback()


async def get_model_registry(request: Request) -> ModelRegistry:
    return container_of(request).model_registry()


async def get_job_service(request: Request) -> JobService:
    return container_of(request).job_service()


async def get_usage_service(request: Request) -> UsageService:
    return container_of(request).usage_service()


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
