"""Sentinel's exception hierarchy and the one JSON error shape.

Every error response looks like
``{"detail": "<human message>", "code": "<stable_code>", "request_id": "..."}``;
validation errors add ``"errors": [{"loc", "msg", "type"}]``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException


class AppError(Exception):
    """Base of every error Sentinel raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        context: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.context = context or {}
        self.headers = headers or {}


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"


class Unavailable(AppError):
    status_code = 503
    code = "service_unavailable"


class ErrorItem(BaseModel):
    """One field-level validation problem."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The JSON body of every error response."""

    detail: str
    code: str
    request_id: str | None = None
    errors: list[ErrorItem] | None = None


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}

# Declared on every route so clients can rely on the error shape.
COMMON_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc}
    for code, desc in {
        400: "Malformed request (the body could not be decoded)",
        401: "Missing or invalid credentials",
        403: "Authenticated but not allowed",
        404: "Not found",
        409: "Conflict with existing data",
        413: "Request body too large",
        422: "Invalid input",
        429: "Rate limit exceeded",
        503: "A dependency is unavailable",
    }.items()
}


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_body(
    detail: str, code: str, request_id: str | None, errors: list[dict] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code, "request_id": request_id}
    if errors is not None:
        body["errors"] = errors
    return body


async def send_error(
    scope: dict[str, Any],
    send: Any,
    status: int,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer from a pure ASGI middleware (before routing) in the one error shape."""
    request_id = scope.get("state", {}).get("request_id")
    body = json.dumps(error_body(detail, code, request_id)).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _loc(loc: Any) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in loc]


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc/msg/type: `input` may be huge, non-JSON (NaN, bytes) or a secret.
    return [
        {"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in exc.errors()
    ]


def _summary(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "Invalid request"
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"] if p not in ("body",)) or "request"
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"Invalid request: {where}: {msg}{more}"


_DB_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


def _is_db_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _DB_UNAVAILABLE):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, ConnectionError | OSError) and not isinstance(exc, FileNotFoundError)


def _is_bad_value(exc: BaseException) -> bool:
    """A value the database refused (SQLSTATE class 22, "data exception"), e.g. NUL in text."""
    if isinstance(exc, sa_exc.DataError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return isinstance(state, str) and state.startswith("22")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error in the one JSON shape."""

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        if exc.status_code >= 500:
            logger.warning("{} ({}): {}", exc.code, exc.status_code, exc.message)
        return JSONResponse(
            error_body(exc.message, exc.code, request_id_of(request)),
            status_code=exc.status_code,
            headers=exc.headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        return JSONResponse(
            error_body(_summary(errors), "validation_error", request_id_of(request), errors),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse(
            error_body(detail, code, request_id_of(request)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(sa_exc.IntegrityError)
    async def _integrity(request: Request, exc: sa_exc.IntegrityError) -> JSONResponse:
        logger.info("integrity conflict: {}", type(exc.orig).__name__)
        return JSONResponse(
            error_body(
                "The request conflicts with existing data", "conflict", request_id_of(request)
            ),
            status_code=409,
        )

    async def _invalid_value(request: Request, exc: Exception) -> JSONResponse:
        # Last resort: schemas should refuse such values first. PostgreSQL refuses NUL in text
        # and out-of-range numbers or dates that SQLite stores; either way it is the input.
        logger.info("database refused a value: {}", type(getattr(exc, "orig", exc)).__name__)
        return JSONResponse(
            error_body(
                "A value could not be stored: text must not contain NUL (\\u0000) characters, "
                "numbers must fit in 64 bits, dates must lie between years 1 and 9999",
                "invalid_value",
                request_id_of(request),
            ),
            status_code=422,
        )

    async def _db_unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("database unavailable: {}", type(exc).__name__)
        return JSONResponse(
            error_body(
                "The database is unavailable right now; retry in a few seconds",
                "database_unavailable",
                request_id_of(request),
            ),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if _is_bad_value(exc):
            return await _invalid_value(request, exc)
        if _is_db_unavailable(exc):
            return await _db_unavailable(request, exc)
        logger.opt(exception=exc).error(
            "unhandled error on {} {}", request.method, request.url.path
        )
        return JSONResponse(
            error_body("Internal server error", "internal_error", request_id_of(request)),
            status_code=500,
        )

    # Specific classes are handled by ExceptionMiddleware (the response is final); the
    # catch-all `Exception` handler runs in ServerErrorMiddleware, which re-raises after it.
    for exc_class in (*_DB_UNAVAILABLE, sa_exc.DBAPIError, OSError, TimeoutError):
        app.add_exception_handler(exc_class, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
