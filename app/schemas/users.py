"""Request and response bodies for users and auth."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.core.security import Role
from app.models.invite import InviteStatus, SignUpMethod
from app.models.user import User as User  # the signed-in account, as routes receive it
from app.schemas.safety import check_line

NAME_MAX_CHARS = 200
EMAIL_MAX_CHARS = 320
_BIDI_OR_INVISIBLE = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200b-\u200f\u2060\u061c\ufeff]")


def check_password_strength(v: str) -> str:
    if len(v) < 8:
        raise ValueError("password must be at least 8 characters long")
    if not any(c.isalpha() for c in v) or not any(c.isdigit() for c in v):
        raise ValueError("password must contain at least one letter and one digit")
    return v


def check_person_name(value: str) -> str:
    """A display name: one line of printable text, no bidi or zero-width characters (they
    reorder or hide what an admin reads) and no `<`/`>` (markup in any page that shows it)."""
    check_line(value)
    if (found := _BIDI_OR_INVISIBLE.search(value)) is not None:
        raise ValueError(
            f"contains an invisible or text-direction character (U+{ord(found.group()):04X}); "
            "remove it"
        )
    if "<" in value or ">" in value:
        raise ValueError("must not contain < or >; use plain text")
    return value


# The length comes first: an over-long name is told it is too long, whatever else it holds.
PersonName = Annotated[
    str, StringConstraints(max_length=NAME_MAX_CHARS), AfterValidator(check_person_name)
]
AccountEmail = Annotated[EmailStr, StringConstraints(max_length=EMAIL_MAX_CHARS)]


class RegisterRequest(BaseModel):
    """A new account."""

    email: EmailStr = Field(examples=["operator@example.com"])
    password: str = Field(min_length=1, max_length=128, examples=["correct-horse-42"])
    name: PersonName | None = Field(default=None, examples=["Night shift operator"])
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
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The existing account's current password, to link Google to it",
    )


class GoogleProfile(BaseModel):
    """What Google says about the person: checked like a registration before it is stored."""

    email: AccountEmail
    name: PersonName | None = None


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
    allow_google_link: StrictBool | None = Field(
        default=None,
        description="Let the next Google sign-in with this account's e-mail link to it "
        "(once; the account must not be linked to a Google account yet)",
    )

    @field_validator("role")
    @classmethod
    def _user_role(cls, v: Role | None) -> Role | None:
        if v is Role.SERVICE:
            raise ValueError("service is the ACCESS_TOKEN principal, not an account role")
        return v


class InviteRequest(BaseModel):
    """An invite: the role it grants, for whom (anyone when empty), how often and how long."""

    role: Role = Role.VIEWER
    email: AccountEmail | None = None
    max_uses: int = Field(default=1, ge=1, le=100, description="Sign-ups it allows")
    expires_in_hours: int = Field(
        default=72, ge=1, le=720, description="Lifetime in hours (at most 30 days)"
    )
    confirm_admin: StrictBool = Field(
        default=False, description="Must be true for an admin-role invite"
    )

    @field_validator("role")
    @classmethod
    def _user_role(cls, v: Role) -> Role:
        if v is Role.SERVICE:
            raise ValueError("service is the ACCESS_TOKEN principal, not an account role")
        return v

    @model_validator(mode="after")
    def _admin_confirmed(self) -> InviteRequest:
        if self.role is Role.ADMIN and not self.confirm_admin:
            raise ValueError(
                "an admin-role invite creates administrators; send confirm_admin: true to issue one"
            )
        return self


class InviteCreated(BaseModel):
    """A new invite; `code` is shown only here (the server keeps a hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str = Field(description="Pass as `invite` when registering; shown once")
    role: Role
    email: str | None
    max_uses: int
    expires_at: datetime


class InviteUseOut(BaseModel):
    """One account created with an invite."""

    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID | None
    email: str
    method: SignUpMethod
    used_at: datetime


class InviteOut(BaseModel):
    """An invite as the list shows it (never its code)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    role: Role
    email: str | None
    max_uses: int
    uses: int
    status: InviteStatus
    issued_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    used_by: list[InviteUseOut]


class PasswordResetRequest(BaseModel):
    """Ask for a password reset mail."""

    email: AccountEmail


class PasswordResetAccepted(BaseModel):
    """The same answer whether or not the address has an account."""

    detail: str = Field(
        default="If this address has an account and e-mail is set up, a reset link is on its "
        "way; it works once, for 30 minutes."
    )


class PasswordResetConfirm(BaseModel):
    """Set a new password with the token from the reset mail."""

    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=128)

    _strong = field_validator("password")(check_password_strength)
