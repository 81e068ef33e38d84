"""Registration and login."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.api.deps import CurrentUser, get_user_service
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.users import (
    GoogleSignIn,
    LoginRequest,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    RegisterRequest,
    RegistrationOut,
    TokenResponse,
)
from app.services.users import IssuedToken, UserService

router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"], responses=COMMON_ERROR_RESPONSES)

Users = Annotated[UserService, Depends(get_user_service)]


# Public routes (no token, even in production): the REGISTRATION setting and the sign-in limits
# are what guard them.


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=RegistrationOut)
async def register(body: RegisterRequest, users: Users) -> RegistrationOut:
    """Create a `viewer` account (REGISTRATION=open; with `invite` when it is `invite`).

    The answer is the same whether or not the address already had an account."""
    await users.register(body.email, body.password, body.name, body.invite)
    return RegistrationOut(email=body.email.lower())


def _token(issued: IssuedToken, response: Response) -> TokenResponse:
    # Tokens must not be kept by browsers or proxies.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)


async def _login_body(request: Request) -> LoginRequest:
    content_type = request.headers.get("content-type", "")
    name = "email"
    try:
        if content_type.startswith("application/json"):
            try:
                data = json.loads(await request.body() or b"null")
            except ValueError as exc:
                raise RequestValidationError(
                    [{"loc": ("body",), "msg": "body is not valid JSON", "type": "json_invalid"}]
                ) from exc
            if not isinstance(data, dict):
                raise RequestValidationError(
                    [
                        {
                            "loc": ("body",),
                            "msg": "expected a JSON object with email and password",
                            "type": "dict_type",
                        }
                    ]
                )
            # `username` (the OAuth2 form's name) is accepted in JSON too; errors name the key sent.
            name = "username" if "username" in data and "email" not in data else "email"
            # A key that was not sent stays absent, so it is reported as missing.
            fields = {k: v for k, v in data.items() if k not in ("email", "username")}
            if name in data:
                fields["email"] = data[name]
            return LoginRequest.model_validate(fields)
        form = await request.form()
        name = "email" if "email" in form and "username" not in form else "username"
        sent = {"email": form.get(name), "password": form.get("password")}
        return LoginRequest.model_validate({k: v for k, v in sent.items() if v is not None})
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {**e, "loc": ("body", *(name if p == "email" else p for p in e["loc"]))}
                for e in exc.errors()
            ]
        ) from exc


_LOGIN_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["username", "password"],
                # Swagger UI pre-fills a form field with its schema sample ("string" for a
                # plain string): an empty first example leaves the field empty, and the
                # description shows as its placeholder.
                "properties": {
                    "username": {
                        "type": "string",
                        "description": "The e-mail you registered with",
                        "examples": [""],
                    },
                    "password": {
                        "type": "string",
                        "format": "password",
                        "description": "Your password",
                        "examples": [""],
                    },
                },
            }
        },
        "application/json": {"schema": LoginRequest.model_json_schema()},
    },
}


@router.post("/login", response_model=TokenResponse, openapi_extra={"requestBody": _LOGIN_BODY})
async def login(request: Request, response: Response, users: Users) -> TokenResponse:
    """OAuth2 password form (Swagger's Authorize button: email as username) or JSON."""
    body = await _login_body(request)
    return _token(await users.login(body.email, body.password, _client(request)), response)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/google", response_model=TokenResponse)
async def google(
    body: GoogleSignIn, request: Request, response: Response, users: Users
) -> TokenResponse:
    """Sign in with a Google ID token: the account bound to that Google account (`sub`), or
    a new one (subject to REGISTRATION). An existing account with the same e-mail is linked
    only when an administrator allowed it or `password` is its current password; else 409."""
    issued = await users.google_sign_in(body.id_token, body.invite, body.password, _client(request))
    return _token(issued, response)


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PasswordResetAccepted,
)
async def password_reset(
    body: PasswordResetRequest, request: Request, users: Users
) -> PasswordResetAccepted:
    """Mail a single-use, 30-minute reset token to the address, if it has an account and
    e-mail (SMTP_HOST, ALERT_EMAIL_FROM) is set up. The answer is the same in every case;
    requests are limited per client (PASSWORD_RESET_MAX_PER_CLIENT)."""
    await users.request_password_reset(body.email, _client(request))
    return PasswordResetAccepted()


@router.post("/password-reset/confirm", status_code=status.HTTP_204_NO_CONTENT)
async def password_reset_confirm(body: PasswordResetConfirm, users: Users) -> Response:
    """Set a new password with the token from the reset mail; every earlier access token and
    reset token of the account stops working."""
    await users.confirm_password_reset(body.token, body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT)
async def logout_all(user: CurrentUser, users: Users) -> Response:
    """Sign out everywhere: every token of this account stops working."""
    await users.sign_out_everywhere(user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
