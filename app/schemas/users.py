"""Request and response bodies for users and auth."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool, field_validator

from app.core.security import Role
from app.schemas.safety import SafeLine


def check_password_strength(v: str) -> str:
    if len(v) < 8:
        raise ValueError("password must be at least 8 characters long")
    if not any(c.isalpha() for c in v) or not any(c.isdigit() for c in v):
        raise ValueError("password must contain at least one letter and one digit")
    return v


class RegisterRequest(BaseModel):
    """A new account."""

    email: EmailStr = Field(examples=["operator@example.com"])
    password: str = Field(min_length=1, max_length=128, examples=["correct-horse-42"])
    name: SafeLine | None = Field(default=None, max_length=200, examples=["Night shift operator"])
    invite: str | None = Field(
        default=None, max_length=2000, description="Invite code (needed when REGISTRATION=invite)"
    )

    _strong = field_validator("password")(check_password_strength)


class LoginRequest(BaseModel):
    """JSON login (the form `username`/`password` is accepted too)."""

    email: EmailStr
    password: str = Field(min_length=1, max_length=128)


class TokenResponse(BaseModel):
    """A bearer token for the `Authorization` header."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires")


class UserOut(BaseModel):
    """A user as the API shows it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str | None
    role: str
    is_active: bool
    created_at: datetime


class GoogleSignIn(BaseModel):
    """A Google ID token from Sign in with Google (and an invite when REGISTRATION=invite)."""

    id_token: str = Field(min_length=1, max_length=8000)
    invite: str | None = Field(default=None, max_length=2000)


class RegistrationOut(BaseModel):
    """The same answer whether or not the address already had an account."""

    email: str
    detail: str = Field(
        default="If this address could be registered, the account exists now: log in with it."
    )


class PasswordChange(BaseModel):
    """Change your password; every earlier token stops working."""

    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=1, max_length=128)

    _strong = field_validator("new_password")(check_password_strength)


class UserUpdate(BaseModel):
    """An administrator's change to an account."""

    role: Role | None = Field(default=None, description="viewer, operator or admin")
    is_active: StrictBool | None = None

    @field_validator("role")
    @classmethod
    def _user_role(cls, v: Role | None) -> Role | None:
        if v is Role.SERVICE:
            raise ValueError("service is the ACCESS_TOKEN principal, not an account role")
        return v


class InviteRequest(BaseModel):
    """Who an invite is for (any address when empty) and the role it grants."""

    email: EmailStr | None = None
    role: Role = Role.VIEWER

    @field_validator("role")
    @classmethod
    def _user_role(cls, v: Role) -> Role:
        if v is Role.SERVICE:
            raise ValueError("service is the ACCESS_TOKEN principal, not an account role")
        return v


class InviteOut(BaseModel):
    """An invite code to pass as `invite` when registering."""

    invite: str
    expires_in: int
