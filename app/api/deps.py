"""FastAPI dependencies backed by the container on `app.state.container`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.container import Container
from app.core.errors import Forbidden, Unauthorized
from app.core.security import Principal
from app.middleware.auth import MSG_FORMAT, MSG_INVALID, MSG_MISSING
from app.models.user import User
from app.services.alerts import AlertService, KakaoNotifier
from app.services.events import EventService
from app.services.health import HealthService
from app.services.stream import EventStream
from app.services.users import UserService

# auto_error=False: we render our own 401s in the one error shape.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


def get_container(request: Request) -> Container:
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_user_service(container: ContainerDep) -> UserService:
    return container.user_service()


def get_health_service(container: ContainerDep) -> HealthService:
    return container.health_service()


def get_event_service(container: ContainerDep) -> EventService:
    return container.event_service()


def get_alert_service(container: ContainerDep) -> AlertService:
    return container.alert_service()


def get_kakao_notifier(container: ContainerDep) -> KakaoNotifier:
    return container.kakao_notifier()


def get_event_stream(container: ContainerDep) -> EventStream:
    return container.event_stream()


async def get_principal(
    request: Request,
    container: ContainerDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The caller: set by the production gate, else from the bearer token here."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized(MSG_MISSING)
    if token is None:
        raise Unauthorized(MSG_FORMAT)
    principal = container.tokens().authenticate(token)
    if principal is None:
        raise Unauthorized(MSG_INVALID)
    return principal


async def get_current_user(
    principal: Annotated[Principal, Depends(get_principal)],
    users: Annotated[UserService, Depends(get_user_service)],
) -> User:
    if principal.kind != "user" or principal.user_id is None:
        raise Forbidden("This endpoint needs a user token; the service token is not a user")
    return await users.get(principal.user_id)


async def optional_principal(request: Request, container: ContainerDep) -> Principal | None:
    """The caller if a valid bearer token was sent (for rate-limit keys and auditing)."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return container.tokens().authenticate(token.strip())


async def require_admin(
    request: Request,
    container: ContainerDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal | None:
    """Admin-only in production (role checked against the database); open in development."""
    if not container.settings().is_production:
        return await optional_principal(request, container)
    principal = await get_principal(request, container, token)
    if principal.kind != "user" or principal.user_id is None:
        raise Forbidden("This endpoint is for administrators; log in as an admin user")
    user = await container.user_service().get(principal.user_id)
    if user.role != "admin":
        raise Forbidden("This endpoint is for administrators")
    return principal


CurrentUser = Annotated[User, Depends(get_current_user)]
AdminPrincipal = Annotated[Principal | None, Depends(require_admin)]
