"""Builds the FastAPI app: container, middleware, error handlers, routers and the lifespan."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig
from loguru import logger
from starlette.routing import BaseRoute

from app.api import ack, compat, console, echo, health, metrics
from app.api.docs import install_docs
from app.api.openapi_doc import install_openapi
from app.api.v1 import behavior
from app.api.v1.prefix import API_PREFIX
from app.api.v1.router import API_ROUTERS
from app.container import Container
from app.core.client_address import ClientAddressMiddleware, TrustedProxies
from app.core.database import run_migrations
from app.core.errors import install_error_handlers
from app.core.logging import flush_logs, setup_logging
from app.core.settings import Settings
from app.core.tasks import stop_all
from app.middleware.auth import BearerGateMiddleware
from app.middleware.edge import EdgeMiddleware
from app.middleware.json_depth import JsonDepthMiddleware
from app.middleware.rate_limit import RateLimitMiddleware
from app.middleware.security import BodySizeLimitMiddleware, cors_options

MIGRATED_ENV = "SENTINEL_MIGRATED"
# Routes that take file uploads for jobs (JOB_UPLOAD_MAX_BYTES instead of MAX_BODY_BYTES).
UPLOAD_PATHS = ("/api/v1/knowledge/import", "/api/v1/admin/jobs/train")
# Set by `sentinel serve` once it has checked (and warned about) the configuration, so the
# app it starts (and each worker) does not print the same warning again.
CHECKED_ENV = "SENTINEL_CONFIG_CHECKED"


class ConfigurationError(RuntimeError):
    """The configuration cannot run safely (e.g. production without secrets)."""


def check_configuration(settings: Settings) -> None:
    problems = settings.insecure_secrets()
    weak = settings.weak_secrets()
    env = settings.environment.value
    hint = (
        "Set a long random value (e.g. `python -c 'import secrets; "
        "print(secrets.token_urlsafe(48))'`)."
    )
    if settings.is_gated and problems:
        raise ConfigurationError(
            f"Refusing to start in {env}: {', '.join(problems)} missing or left at a default. "
            + hint
        )
    if settings.is_gated and weak:
        raise ConfigurationError(
            f"Refusing to start in {env}: {', '.join(weak)} too weak (at least 32 characters, "
            "10 of them different). " + hint
        )
    if problems and not os.environ.get(CHECKED_ENV):
        logger.warning(
            "{} not set: fine for development, required in staging and production",
            ", ".join(problems),
        )
    if settings.is_gated and settings.security.access_token and not os.environ.get(CHECKED_ENV):
        # The shared token may post for any source id (issue 29, finding 5).
        logger.warning(
            "ACCESS_TOKEN is shared by every agent and may post events for any source: give "
            "each agent its own token bound to its sources (POST /api/v1/admin/agents), then "
            "retire ACCESS_TOKEN"
        )


def _lifespan(container: Container) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = container.settings()
        if settings.db.migrate_on_start and not os.environ.get(MIGRATED_ENV):
            await asyncio.to_thread(run_migrations, settings.db.url)
        started = []
        try:
            for component in container.lifecycle():
                await component.start()
                started.append(component)
            # Everything loaded so far (torch, models, routes) lives for the whole process:
            # keep it out of the cyclic GC, whose full passes over it caused the long tail.
            gc.freeze()
            logger.info(
                "Sentinel {} started ({}, {}, redis {})",
                settings.version,
                settings.environment.value,
                container.database().dialect,
                "on" if settings.redis.enabled else "off",
            )
            yield
        finally:
            # One deadline for the whole shutdown, not one per component.
            deadline = asyncio.get_running_loop().time() + settings.shutdown_timeout_secs
            await stop_all(reversed(started), lambda: asyncio.timeout_at(deadline))
            await container.database().dispose()
            logger.info("Sentinel stopped")
            flush_logs()

    return lifespan


DESCRIPTION = """
Sentinel monitors behaviour from video analytics: it scores feature sequences with an
in-process LSTM, stores events and episodes, alerts through Kakao Talk, and answers
questions from a knowledge base.

**Auth**: register at `/api/v1/auth/register` (or sign in with Google), log in at
`/api/v1/auth/login`, then paste the `access_token` into **Authorize**.
In production and staging every route outside `/health*`, the docs and sign-in needs a bearer
token (a user JWT or the service `ACCESS_TOKEN`), and each route names the roles it accepts
(viewer < operator < admin, and the service principal).
"""


def _telemetry() -> TelemetryConfig:
    """FastAPI's OpenTelemetry spans and metrics only where an operator asks for them with
    FastAPI's own switch (`FASTAPI_OTEL_AUTO_CONFIGURE=true`): Sentinel's metrics are
    Prometheus (`/metrics`), and looking for OpenTelemetry providers on every request cost
    about 5 µs of an event's 200."""
    wanted = os.environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true"
    return {"tracing": wanted, "metrics": wanted, "logs": wanted}


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """Build a Sentinel app; tests pass their own settings or container."""
    container = container or Container()
    if settings is not None:
        container.settings.override(settings)
    settings = container.settings()
    setup_logging(settings.log)
    check_configuration(settings)

    app = FastAPI(
        title=settings.app_name,
        version=settings.version,
        description=DESCRIPTION,
        lifespan=_lifespan(container),
        swagger_ui_parameters={"persistAuthorization": True},
        docs_url=None,  # served from local assets by install_docs
        redoc_url=None,
        telemetry=_telemetry(),
    )
    app.state.container = container
    app.state.default_language = settings.default_language
    install_error_handlers(app)

    # Middleware runs outermost-last-added: client address (TRUSTED_PROXIES) → edge (request
    # id, access log, metrics, security headers; CORS for browser requests) → body limit →
    # gate → rate limit → JSON depth → app.
    app.add_middleware(JsonDepthMiddleware, max_depth=settings.security.json_max_depth)
    if settings.rate_limit.enabled:
        app.add_middleware(
            RateLimitMiddleware, limiter=container.rate_limiter(), tokens=container.tokens()
        )
    if settings.is_gated:
        exempt = settings.security.exempt_paths
        if settings.metrics_public:
            exempt = [*exempt, "/metrics"]
        app.add_middleware(
            BearerGateMiddleware, authenticator=container.authenticator(), exempt_paths=exempt
        )
    upload_limit = max(settings.jobs.upload_max_bytes, settings.security.max_body_bytes)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.security.max_body_bytes,
        path_limits={path: upload_limit for path in UPLOAD_PATHS},
    )
    app.add_middleware(
        EdgeMiddleware,
        cors_options=cors_options(settings),
        access_log=settings.log.access_log,
        access_exclude=settings.log.access_exclude_paths,
        hsts=settings.is_production,
    )
    proxies = TrustedProxies.parse(settings.security.trusted_proxies)
    if proxies:  # outermost: every layer inside sees the client, not the proxy
        app.add_middleware(ClientAddressMiddleware, proxies=proxies)

    # Hot paths first (routes are matched in order): probes, then the API, the docs last.
    routers = [health.router, *API_ROUTERS, behavior.compat_router]  # compat: legacy agent path
    routers += [metrics.router, compat.router, console.router, ack.router]
    if not settings.is_production:
        routers.append(echo.router)
    add_routes(app, routers)
    install_docs(app)
    install_openapi(app)
    return app


# Matched before every other route, in this order: each route tried before the one a request
# is for costs a few microseconds, and these are what the agent and the probes call all day.
HOT_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/health/live"),
    ("POST", f"{API_PREFIX}/events"),
    ("POST", f"{API_PREFIX}/behavior/analyze"),
    ("POST", "/behavior/analyze"),  # the legacy path the agent calls (was matched 78th)
)


def add_routes(app: FastAPI, routers: list[APIRouter]) -> None:
    """Put the routers' routes straight into the app's own list, as `@app.get` would, the
    `HOT_ROUTES` first.

    Every router carries its full path prefix and nothing is added at inclusion, so this is
    what `include_router` means here; FastAPI's included routers are matched through an extra
    layer per level on every request (a fifth of a probe's cost). The OpenAPI document keeps
    the routers' order (`documented_routes`).
    """
    routes = [route for router in routers for route in router.routes]

    def rank(route: BaseRoute) -> int:
        methods = getattr(route, "methods", None) or set()
        for index, (method, path) in enumerate(HOT_ROUTES):
            if getattr(route, "path", None) == path and method in methods:
                return index
        return len(HOT_ROUTES)

    # Sorted with FastAPI's own `/openapi.json` too; stable: the rest keep their order.
    app.router.routes[:] = sorted([*app.router.routes, *routes], key=rank)
    app.state.documented_routes = routes


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory app.main:app_factory` (used by `sentinel serve`)."""
    return create_app()
