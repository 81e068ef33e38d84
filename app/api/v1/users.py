"""The current user."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import CurrentUser
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.users import UserOut

router = APIRouter(prefix="/users", tags=["users"], responses=COMMON_ERROR_RESPONSES)


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    """The account behind the bearer token."""
    return UserOut.model_validate(user)
