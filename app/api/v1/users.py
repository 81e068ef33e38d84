"""The current user, and account administration (admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.api.authz import ADMINS, Caller, GuardedRoute, require
from app.api.deps import CurrentUser, get_user_service
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.users import (
    InviteOut,
    InviteRequest,
    PasswordChange,
    TokenResponse,
    UserOut,
    UserUpdate,
)
from app.services.users import UserService

router = APIRouter(
    route_class=GuardedRoute,
    prefix=f"{API_PREFIX}/users",
    tags=["users"],
    responses=COMMON_ERROR_RESPONSES,
)
admin_router = APIRouter(
    route_class=GuardedRoute,
    prefix=f"{API_PREFIX}/admin",
    tags=["admin"],
    responses=COMMON_ERROR_RESPONSES,
)

Users = Annotated[UserService, Depends(get_user_service)]
Admin = Annotated[Caller, Depends(require(*ADMINS))]


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    """The account behind the bearer token."""
    return UserOut.model_validate(user)


@router.post("/me/password", response_model=TokenResponse)
async def change_password(
    body: PasswordChange, user: CurrentUser, users: Users, response: Response
) -> TokenResponse:
    """Change your password; every earlier token stops working and a new one is returned."""
    issued = await users.change_password(user.id, body.current_password, body.new_password)
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)


@admin_router.get("/users", response_model=list[UserOut])
async def list_users(
    _: Admin, users: Users, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[UserOut]:
    """Accounts, oldest first."""
    return [UserOut.model_validate(u) for u in await users.list(limit)]


@admin_router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(user_id: uuid.UUID, body: UserUpdate, admin: Admin, users: Users) -> UserOut:
    """Change an account's role (viewer, operator, admin) or deactivate it; a deactivated
    account's tokens stop working within AUTH_STATE_CACHE_SECS."""
    user = await users.update(
        user_id, body.role, body.is_active, actor=admin.user_id if admin else None
    )
    return UserOut.model_validate(user)


@admin_router.post("/invites", response_model=InviteOut, status_code=status.HTTP_201_CREATED)
async def create_invite(body: InviteRequest, _: Admin, users: Users) -> InviteOut:
    """An invite code for REGISTRATION=invite (valid 7 days)."""
    code, expires_in = users.invite(body.email, body.role)
    return InviteOut(invite=code, expires_in=expires_in)
