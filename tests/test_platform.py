"""Health, the production bearer gate, error shapes, request ids, echo and settings."""

from __future__ import annotations

import socket

import pytest

from app.core.logging import redact
from app.core.settings import Environment, Settings
from app.main import ConfigurationError, create_app
from tests.conftest import register_and_login

SERVICE_TOKEN = "service-token-for-tests-0123456789abcdef"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_health_reports_database_and_redis_with_latencies(client, redis_url):
    r = await client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    assert body["environment"] == "development" and body["version"]
    db = body["services"]["database"]
    assert db["status"] == "healthy" and db["latency_ms"] >= 0 and "pool" in db
    if redis_url:
        assert body["services"]["redis"]["status"] == "healthy"
        assert body["services"]["redis"]["latency_ms"] >= 0
    else:
        assert body["services"]["redis"] == {"status": "disabled"}


async def test_live_and_ready(client):
    assert (await client.get("/health/live")).json() == {"status": "alive"}
    r = await client.get("/health/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready"


async def test_unreachable_redis_degrades_health_but_requests_succeed(make_app, clean_state):
    async with make_app(redis={"url": f"redis://127.0.0.1:{_closed_port()}/0"}) as (_, client):
        r = await client.get("/health")
        assert r.status_code == 200
        assert r.json()["status"] == "degraded"
        assert r.json()["services"]["redis"]["status"] == "down"
        token = await register_and_login(client)
        me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200


async def test_unreachable_database_is_unhealthy_503(make_app):
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/nothing"
    async with make_app(db={"url": url, "connect_timeout_secs": 1}) as (_, client):
        r = await client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unhealthy"
        assert (await client.get("/health/ready")).status_code == 503
        r = await client.post(
            "/api/v1/auth/login", data={"username": "a@example.com", "password": "abcdefgh1"}
        )
        assert r.status_code == 503
        assert r.json()["code"] == "database_unavailable"
        assert "Traceback" not in r.text


@pytest.fixture
async def prod_client(make_app, clean_state):
    async with make_app(
        environment="production",
        security={"access_token": SERVICE_TOKEN, "registration": "open"},
    ) as (_, client):
        yield client


async def test_gate_rejects_missing_malformed_and_wrong_tokens(prod_client):
    r = await prod_client.get("/api/v1/users/me")
    assert r.status_code == 401
    assert r.json()["detail"] == "Authorization header required"
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["request_id"] == r.headers["x-request-id"]

    r = await prod_client.get("/api/v1/users/me", headers={"Authorization": "Basic x"})
    assert r.status_code == 401 and r.json()["detail"] == "Invalid authorization header format"

    r = await prod_client.get("/api/v1/users/me", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["detail"] == "Invalid access token"


async def test_gate_leaves_health_and_docs_open(prod_client):
    for path in ("/health", "/health/live", "/health/ready", "/docs", "/openapi.json"):
        assert (await prod_client.get(path)).status_code == 200, path


async def test_gate_accepts_service_token_and_user_jwt(prod_client):
    # Sign-up and sign-in need no token (issue 16 finding 5); REGISTRATION guards sign-up.
    svc = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    r = await prod_client.post(
        "/api/v1/auth/register", json={"email": "prod@example.com", "password": "prod-pass-1"}
    )
    assert r.status_code == 201
    r = await prod_client.post(
        "/api/v1/auth/login", data={"username": "prod@example.com", "password": "prod-pass-1"}
    )
    assert r.headers["cache-control"] == "no-store"
    token = r.json()["access_token"]
    me = await prod_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["email"] == "prod@example.com"
    # The service token is not a user.
    assert (await prod_client.get("/api/v1/users/me", headers=svc)).status_code == 403


async def test_echo_is_not_served_in_production(prod_client, client):
    svc = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    assert (await prod_client.post("/echo", json={"a": 1}, headers=svc)).status_code == 404
    r = await client.post("/echo", json={"a": [1, 2, {"b": None}]})
    assert r.status_code == 200 and r.json() == {"a": [1, 2, {"b": None}]}


def test_production_refuses_to_start_without_secrets(settings_factory):
    settings = settings_factory(environment="production", security={"jwt_secret": ""})
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        create_app(settings)
    settings = settings_factory(environment="production", security={"access_token": ""})
    with pytest.raises(ConfigurationError, match="ACCESS_TOKEN"):
        create_app(settings)


def test_environment_accepts_prod_aliases(monkeypatch):
    for value in ("PROD", "prod", "Production"):
        monkeypatch.setenv("ENVIRONMENT", value)
        assert Settings().environment == Environment.production


async def test_request_id_is_propagated_and_unknown_routes_use_error_shape(client):
    r = await client.get("/nope", headers={"X-Request-ID": "agent-42"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "agent-42"
    assert r.json() == {"detail": "Not Found", "code": "not_found", "request_id": "agent-42"}
    r = await client.delete("/health")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_redact_scrubs_credentials():
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijk"
    text = redact(
        f"Authorization: Bearer {jwt_like} password=hunter22 api_key=AIzaSyA1234567890123456789 "
        "url=https://x/y?key=abc123 sk-abcdefghijklmnop"
    )
    for secret in (
        jwt_like,
        "hunter22",
        "AIzaSyA1234567890123456789",
        "abc123",
        "sk-abcdefghijklmnop",
    ):
        assert secret not in text


def test_no_route_runs_a_dependency_in_the_thread_pool():
    """FastAPI runs a plain `def` dependency or endpoint in the thread pool: two thread hops per
    request on the hot paths before they were made `async def`."""
    import inspect

    from app.main import create_app

    def sync_calls(dependant) -> list[str]:
        found = []
        for dep in dependant.dependencies:
            call = dep.call
            if call is not None and not (
                inspect.iscoroutinefunction(call)
                or inspect.iscoroutinefunction(type(call).__call__)
            ):
                found.append(getattr(call, "__qualname__", repr(call)))
            found += sync_calls(dep)
        return found

    offenders = {}
    for route in create_app().routes:
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        calls = sync_calls(dependant)
        if not inspect.iscoroutinefunction(dependant.call):
            calls.append(dependant.call.__qualname__)
        if calls:
            offenders[route.path] = calls
    assert offenders == {}


def test_hot_routes_are_matched_first_and_documented_in_router_order():
    from app.main import HOT_ROUTES, create_app

    app = create_app()
    first = [(sorted(r.methods)[0], r.path) for r in app.router.routes[: len(HOT_ROUTES)]]
    assert first == list(HOT_ROUTES)
    # The document keeps the routers' order: health first, then events, … (not match order).
    paths = list(app.openapi()["paths"])
    assert paths[0].startswith("/health") and paths.index("/api/v1/events") > paths.index(
        "/health/live"
    )


def test_role_guards_run_before_the_dependency_solver_but_stay_documented():
    from app.api.authz import GuardedRoute
    from app.main import create_app

    app = create_app()
    # Every route declaring a role guard is built by GuardedRoute (a router that forgets
    # `route_class=GuardedRoute` would still work, only slower: this keeps them all on it).
    guarded = [
        r
        for r in app.routes
        if any(hasattr(d.dependency, "check") for d in getattr(r, "dependencies", []))
    ]
    assert len(guarded) > 20  # the rest take the caller as a parameter
    slow = [r.path for r in guarded if not isinstance(r, GuardedRoute)]
    assert slow == []
    [route] = [r for r in guarded if r.path == "/api/v1/events" and "POST" in r.methods]
    # Declared (the route × role walk and OpenAPI read it) …
    assert any(getattr(d.dependency, "roles", None) for d in route.dependencies)
    assert app.openapi()["paths"]["/api/v1/events"]["post"]["security"] == [{"bearerAuth": []}]
