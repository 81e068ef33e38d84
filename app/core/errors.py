"""Sentinel's exception hierarchy and the one JSON error shape.

Every error response looks like
``{"detail": "<human message>", "code": "<stable_code>", "request_id": "..."}``;
validation errors add ``"errors": [{"loc", "msg", "type"}]``.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc

from app.core.i18n import Language, language_of, localize, localize_validation

if TYPE_CHECKING:
    # FastAPI only where errors are rendered: services and the database-only CLI commands
    # raise these errors without loading the web stack (~0.4 s of a command's start).
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.responses import Response


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
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        # Machine-readable facts beside the message (a gate's figures, the accepted values),
        # sent as the body's optional `details`.
        self.details = details
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


class RateLimited(AppError):
    """Too many requests of one kind (login attempts, live-stream subscribers)."""

    status_code = 429
    code = "rate_limited"


class Unavailable(AppError):
    status_code = 503
    code = "service_unavailable"


class ErrorItem(BaseModel):
    """One field-level validation problem: where (`loc`, `field`), what and what would be right
    (`msg`, in the request's language), and a stable `type`."""

    loc: list[str | int]
    field: str
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The JSON body of every error response."""

    detail: str
    code: str
    request_id: str | None = None
    errors: list[ErrorItem] | None = None
    details: dict[str, Any] | None = Field(
        None, description="Facts beside the message: a promotion gate's figures, accepted values"
    )


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


def _default_language(app: Any) -> Language:
    state = getattr(app, "state", None)
    return getattr(state, "default_language", None) or Language.EN


def language_for(request: Request) -> Language:
    """The language of this request's error messages (Accept-Language, else DEFAULT_LANGUAGE).

    Chosen only when an error is rendered, so successful requests pay nothing for it.
    """
    return language_of(request.headers, _default_language(request.app))


def _json(
    request: Request,
    status_code: int,
    body: dict[str, Any],
    language: Language,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        body, status_code=status_code, headers={**(headers or {}), "Content-Language": language}
    )


def error_body(
    detail: str,
    code: str,
    request_id: str | None,
    errors: list[dict] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code, "request_id": request_id}
    if errors is not None:
        body["errors"] = errors
    if details is not None:
        body["details"] = details
    return body


async def send_error(
    scope: MutableMapping[str, Any],
    send: Any,
    status: int,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer from a pure ASGI middleware (before routing) in the one error shape.

    `detail` is the English sentence; other languages come from the catalogue.
    """
    request_id = scope.get("state", {}).get("request_id")
    language = language_of(scope.get("headers", ()), _default_language(scope.get("app")))
    detail = localize(code, detail, language)
    body = json.dumps(error_body(detail, code, request_id), ensure_ascii=False).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"content-language", language.value.encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _loc(loc: Any) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in loc]


def _field(loc: list[str | int]) -> str:
    return (
        ".".join(str(p) for p in loc[1:] if p != "body")
        if len(loc) > 1
        else str(loc[0] if loc else "request")
    )


def _validation_errors(exc: RequestValidationError, language: Language) -> list[dict[str, Any]]:
    # Only loc/field/msg/type: `input` may be huge, non-JSON (NaN, bytes) or a secret.
    items = []
    for e in exc.errors():
        loc = _loc(e.get("loc", ()))
        english = str(e.get("msg", "")).removeprefix("Value error, ")
        ctx = {
            k: v if isinstance(v, str | int | float) else str(v)
            for k, v in (e.get("ctx") or {}).items()
        }
        kind = str(e.get("type"))
        field = _field(loc) or "body"
        if kind == "json_invalid" and len(loc) > 1 and isinstance(loc[-1], int):
            # FastAPI puts the character offset where a field name would be: say it in words.
            field, ctx["position"] = "body", loc[-1]
            english = f"{english} at character {loc[-1]}: {ctx.get('error', 'invalid JSON')}"
        msg = localize_validation(kind, english, ctx, language)
        items.append({"loc": loc, "field": field, "msg": msg, "type": kind})
    return items


def _summary(errors: list[dict[str, Any]], language: Language) -> str:
    ko = language is Language.KO
    if not errors:
        return "요청이 올바르지 않습니다" if ko else "Invalid request"
    first = errors[0]
    more = len(errors) - 1
    if ko:
        tail = f" (외 {more}건)" if more else ""
        return f"요청이 올바르지 않습니다: {first['field']}: {first['msg']}{tail}"
    tail = f" (and {more} more problem(s))" if more else ""
    return f"Invalid request: {first['field']}: {first['msg']}{tail}"


def _is_not_json_body(request: Request, errors: list[dict[str, Any]]) -> bool:
    """A body that is not a JSON object where the route reads one (form, text/plain, none)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.endswith("json"):
        return False
    return any(
        e["loc"] == ["body"]
        and e["type"] in ("model_attributes_type", "dict_type", "model_type", "missing")
        for e in errors
    )


NOT_JSON_MESSAGE = "Send the body as JSON with Content-Type: application/json"


_DB_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


def _is_db_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _DB_UNAVAILABLE):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, ConnectionError | OSError) and not isinstance(exc, FileNotFoundError)


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


def _is_bad_value(exc: BaseException) -> bool:
    """A value the database refused (SQLSTATE class 22, "data exception"), e.g. NUL in text."""
    if isinstance(exc, sa_exc.DataError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    state = _sqlstate(exc)
    return state is not None and state.startswith("22")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error in the one JSON shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response

    def render(
        request: Request,
        status_code: int,
        code: str,
        english: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> JSONResponse:
        language = language_for(request)
        detail = localize(code, english, language, params)
        body = error_body(detail, code, request_id_of(request), details=details)
        return _json(request, status_code, body, language, headers)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        if exc.status_code >= 500:
            logger.warning("{} ({}): {}", exc.code, exc.status_code, exc.message)
        return render(
            request,
            exc.status_code,
            exc.code,
            exc.message,
            exc.context,
            exc.headers or None,
            exc.details,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        language = language_for(request)
        errors = _validation_errors(exc, language)
        if _is_not_json_body(request, errors):
            return render(request, 415, "unsupported_media_type", NOT_JSON_MESSAGE)
        body = error_body(
            _summary(errors, language), "validation_error", request_id_of(request), errors
        )
        return _json(request, 422, body, language)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: Exception) -> Response:
        # The client went away while sending its body: nobody reads an answer, nothing failed
        # here. 499 (nginx's "client closed request") makes the access line say so, once.
        return Response(status_code=499)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.__cause__, ClientDisconnect):  # FastAPI wraps it in a 400
            return await _client_gone(request, exc.__cause__)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body it cannot decode (e.g. not UTF-8): the same 422 as
            # any other body that is not JSON, so the contract has one answer for it.
            return render(
                request,
                422,
                "json_invalid",
                "The body could not be read as JSON: send UTF-8 JSON with "
                "Content-Type: application/json",
            )
        # A middleware's own exception class may name its code (e.g. json_too_deep).
        code = getattr(exc, "code", None) or _STATUS_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return render(request, exc.status_code, code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(sa_exc.IntegrityError)
    async def _integrity(request: Request, exc: sa_exc.IntegrityError) -> JSONResponse:
        logger.info("integrity conflict: {}", type(exc.orig).__name__)
        return render(request, 409, "conflict", "The request conflicts with existing data")

    async def _invalid_value(request: Request, exc: Exception) -> JSONResponse:
        # Last resort: schemas should refuse such values first. PostgreSQL refuses NUL in text
        # and out-of-range numbers or dates that SQLite stores; either way it is the input.
        logger.info("database refused a value: {}", type(getattr(exc, "orig", exc)).__name__)
        if _sqlstate(exc) == "22001":
            # "string data, right truncation": the text is too long, whatever else it holds.
            return render(
                request,
                422,
                "invalid_value",
                "A value could not be stored: a text is longer than its field allows; shorten it",
            )
        return render(
            request,
            422,
            "invalid_value",
            "A value could not be stored: text must not contain NUL (\\u0000) characters, "
            "numbers must fit in 64 bits, dates must lie between years 1 and 9999",
        )

    async def _db_unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("database unavailable: {}", type(exc).__name__)
        return render(
            request,
            503,
            "database_unavailable",
            "The database is unavailable right now; retry in a few seconds",
            headers={"Retry-After": "5"},
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if _is_bad_value(exc):
            return await _invalid_value(request, exc)
        if _is_db_unavailable(exc):
            return await _db_unavailable(request, exc)
        logger.opt(exception=exc).error(
            "unhandled error on {} {}",
            request.method,
            request.url.path.encode("unicode_escape").decode("ascii")[:2048],
        )
        return render(request, 500, "internal_error", "Internal server error")

    # Specific classes are handled by ExceptionMiddleware (the response is final); the
    # catch-all `Exception` handler runs in ServerErrorMiddleware, which re-raises after it.
    for exc_class in (*_DB_UNAVAILABLE, sa_exc.DBAPIError, OSError, TimeoutError):
        app.add_exception_handler(exc_class, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
