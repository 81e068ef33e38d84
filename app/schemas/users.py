"""Request and response bodies for users and auth."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator


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
    name: str | None = Field(default=None, max_length=200, examples=["Night shift operator"])

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
