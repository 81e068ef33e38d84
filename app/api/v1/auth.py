"""Registration and login."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.api.deps import get_user_service
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.users import LoginRequest, RegisterRequest, TokenResponse, UserOut
from app.services.users import UserService

router = APIRouter(prefix="/auth", tags=["auth"], responses=COMMON_ERROR_RESPONSES)

Users = Annotated[UserService, Depends(get_user_service)]


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def register(body: RegisterRequest, users: Users) -> UserOut:
    """Create an account with role `user`."""
    user = await users.register(body.email, body.password, body.name)
    return UserOut.model_validate(user)


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
            return LoginRequest.model_validate({**data, "email": data.get(name)})
        form = await request.form()
        name = "email" if "email" in form and "username" not in form else "username"
        return LoginRequest.model_validate(
            {"email": form.get(name), "password": form.get("password")}
        )
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
                "properties": {
                    "username": {"type": "string", "description": "Your email"},
                    "password": {"type": "string", "format": "password"},
                },
            }
        },
        "application/json": {"schema": LoginRequest.model_json_schema()},
    },
}


@router.post("/login", response_model=TokenResponse, openapi_extra={"requestBody": _LOGIN_BODY})
async def login(request: Request, users: Users) -> TokenResponse:
    """OAuth2 password form (Swagger's Authorize button: email as username) or JSON."""
    body = await _login_body(request)
    token, expires_in = await users.login(body.email, body.password)
    return TokenResponse(access_token=token, expires_in=expires_in)
