"""The current user, and account administration (admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.api.authz import ADMINS, Caller, GuardedRoute, require
from app.api.deps import CurrentUser, get_user_service
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.users import (
    InviteCreated,
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
    body: PasswordChange, user: CurrentUser, users: Users, request: Request, response: Response
) -> TokenResponse:
    """Change your password; every earlier token stops working and a new one is returned.
    A wrong current password counts as a failed sign-in (same limits as login)."""
    client = request.client.host if request.client else "unknown"
    issued = await users.change_password(user.id, body.current_password, body.new_password, client)
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
    account's tokens stop working within AUTH_STATE_CACHE_SECS. `allow_google_link` lets the
    next Google sign-in with the account's e-mail link to it."""
    user = await users.update(
        user_id,
        body.role,
        body.is_active,
        actor=admin.user_id if admin else None,
        allow_google_link=body.allow_google_link,
    )
    return UserOut.model_validate(user)


@admin_router.post("/invites", response_model=InviteCreated, status_code=status.HTTP_201_CREATED)
async def create_invite(body: InviteRequest, admin: Admin, users: Users) -> InviteCreated:
    """An invite for REGISTRATION=invite: single use and 72 hours unless asked otherwise (at
    most 30 days); an admin-role invite needs `confirm_admin: true`. The code is shown only
    here. The invite dies when its issuer is deactivated or is no longer an admin."""
    issued = await users.create_invite(
        admin.user_id if admin else None,
        body.role,
        body.email,
        body.max_uses,
        body.expires_in_hours,
    )
    return InviteCreated.model_validate(issued)


@admin_router.get("/invites", response_model=list[InviteOut])
async def list_invites(
    _: Admin, users: Users, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[InviteOut]:
    """Invites, newest first, with their state and who signed up with each (no codes)."""
    return await users.list_invites(limit)


@admin_router.delete("/invites/{invite_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invite(invite_id: uuid.UUID, admin: Admin, users: Users) -> Response:
    """Revoke an invite: it is refused from now on (its accounts stay)."""
    await users.revoke_invite(invite_id, actor=admin.user_id if admin else None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
