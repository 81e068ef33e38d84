"""Security hardening: headers, CORS, body limit, JWT refusals, the production route walk,
secrets kept out of logs and the encryption key required with Kakao in production."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute
from loguru import logger

from app.api.authz import require
from app.core.security import Role
from app.main import ConfigurationError, create_app

SERVICE_TOKEN = "service-token-for-the-security-tests-0123456789abcdef"
PROD = {
    "environment": "production",
    "security": {"access_token": SERVICE_TOKEN, "registration": "open"},
}


# --- headers, CORS, body limit -------------------------------------------------------------


async def test_responses_carry_security_headers(client):
    for path in ("/health/live", "/api/v1/users/me", "/nowhere"):
        r = await client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in r.headers["content-security-policy"]
    # The docs pages run Swagger UI / ReDoc scripts, but only from this server.
    for path in ("/docs", "/redoc"):
        r = await client.get(path)
        assert r.status_code == 200
        assert "default-src 'self'" in r.headers["content-security-policy"]


async def test_hsts_is_sent_in_production(make_app):
    async with make_app(**PROD) as (_, client):
        r = await client.get("/health/live")
        assert r.headers["strict-transport-security"].startswith("max-age=")


async def _preflight(client, origin: str):
    return await client.options(
        "/api/v1/users/me",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


async def test_cors_allows_only_configured_origins(make_app):
    async with make_app(security={"cors_origins": "https://console.example.com"}) as (_, client):
        r = await _preflight(client, "https://console.example.com")
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://console.example.com"
        r = await _preflight(client, "https://evil.example.net")
        assert "access-control-allow-origin" not in r.headers
        r = await client.get("/health/live", headers={"Origin": "https://evil.example.net"})
        assert "access-control-allow-origin" not in r.headers


async def test_cors_is_closed_by_default_in_production(make_app):
    async with make_app(**PROD) as (_, client):
        for origin in ("http://localhost:3000", "https://console.example.com"):
            r = await _preflight(client, origin)
            assert "access-control-allow-origin" not in r.headers
            r = await client.get("/health/live", headers={"Origin": origin})
            assert "access-control-allow-origin" not in r.headers


async def test_cors_allows_localhost_pages_in_development_by_default(client):
    r = await _preflight(client, "http://localhost:5173")
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"


async def test_declared_oversized_body_gets_413_with_clear_message(make_app):
    async with make_app(security={"max_body_bytes": 2048}) as (_, client):
        r = await client.post(
            "/api/v1/auth/register",
            content=b'{"email": "' + b"a" * 5000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413
        body = r.json()
        assert body["code"] == "payload_too_large"
        assert "2048 bytes" in body["detail"] and "MAX_BODY_BYTES" in body["detail"]
        assert body["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/api/v1/auth/register", "/api/v1/auth/login", "/echo"])
async def test_streamed_body_over_the_limit_gets_413(make_app, path):
    """A chunked body has no Content-Length: the limit is enforced while reading it."""

    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    async with make_app(security={"max_body_bytes": 4096}) as (_, client):
        r = await client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
        assert "content-length" not in r.request.headers
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "payload_too_large"
        assert "4096 bytes" in r.json()["detail"]


async def test_body_under_the_limit_passes(make_app):
    async with make_app(security={"max_body_bytes": 4096}) as (_, client):
        r = await client.post("/echo", json={"text": "y" * 3000})
        assert r.status_code == 200 and r.json() == {"text": "y" * 3000}


# --- JWT -----------------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(valid: str, secret: str) -> dict[str, str]:
    claims = jwt.decode(valid, secret, algorithms=["HS256"], options={"verify_aud": False})
    now = datetime.now(UTC)
    expired = {**claims, "iat": now - timedelta(hours=2), "exp": now - timedelta(hours=1)}
    header, _payload, signature = valid.split(".")
    forged = {**claims, "role": "admin"}
    return {
        "expired": jwt.encode(expired, secret, algorithm="HS256"),
        "tampered": f"{header}.{_b64(forged)}.{signature}",
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(forged)}.",
        "wrong_secret": jwt.encode(claims, "not-the-server-secret-" * 3, algorithm="HS256"),
        "other_alg": jwt.encode(claims, secret, algorithm="HS512"),
        "garbage": "not.a.jwt",
        "wrong_audience": jwt.encode({**claims, "aud": "another-api"}, secret, algorithm="HS256"),
        "wrong_issuer": jwt.encode({**claims, "iss": "someone-else"}, secret, algorithm="HS256"),
        "no_audience": jwt.encode(
            {k: v for k, v in claims.items() if k != "aud"}, secret, algorithm="HS256"
        ),
    }


@pytest.mark.filterwarnings("ignore:The HMAC key")
@pytest.mark.parametrize("environment", ["development", "production"])
async def test_expired_tampered_alg_none_and_wrong_secret_tokens_are_refused(
    make_app, environment, clean_state
):
    overrides = PROD if environment == "production" else {}
    async with make_app(**overrides) as (app, client):
        service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
        email = f"jwt-{uuid.uuid4().hex[:6]}@example.com"
        r = await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": "jwt-pass-123"},
            headers=service,
        )
        assert r.status_code == 201
        r = await client.post(
            "/api/v1/auth/login",
            data={"username": email, "password": "jwt-pass-123"},
            headers=service,
        )
        valid = r.json()["access_token"]
        ok = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {valid}"})
        assert ok.status_code == 200
        secret = app.state.container.settings().security.jwt_secret
        for name, token in _bad_tokens(valid, secret).items():
            r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, name
            assert r.json()["code"] == "unauthorized", name
            assert r.headers["www-authenticate"] == "Bearer", name


# --- the production route walk -------------------------------------------------------------


def _api_routes(app) -> list[tuple[str, set[str], APIRoute]]:
    """(full path template, methods, route) of every FastAPI route, included routers too."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: routes are flat
        return [(r.path_format, r.methods, r) for r in app.routes if isinstance(r, APIRoute)]
    found = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            found.append((ctx.path_format, set(ctx.methods or route.methods), route))
    return found


def _admin_only(dependant) -> bool:
    return any(
        getattr(d.call, "roles", None) == (Role.ADMIN,) or _admin_only(d)
        for d in dependant.dependencies
    )


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)


def _with_probe_admin_route(app):
    """Add an admin-only route so the walk always has one to prove 403 on."""
    router = APIRouter(prefix="/api/v1/probe-admin")

    @router.get("/stats", dependencies=[Depends(require(Role.ADMIN))])
    async def stats() -> dict:
        return {"ok": True}

    app.include_router(router)


async def test_every_route_is_exempt_or_needs_a_token_in_production(make_app, clean_state):
    async with make_app(**PROD) as (app, client):
        _with_probe_admin_route(app)
        app.openapi_schema = None
        r = await client.get("/openapi.json")
        assert r.status_code == 200
        schema = r.json()
        exempt = app.state.container.settings().security.exempt_paths
        from app.middleware.auth import is_exempt

        checked, open_routes = 0, []
        for path, operations in schema["paths"].items():
            for method in operations:
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                url = _concrete(path)
                r = await client.request(method.upper(), url)
                checked += 1
                if is_exempt(url, exempt):
                    continue
                if r.status_code != 401 or r.json().get("code") != "unauthorized":
                    open_routes.append(f"{method.upper()} {path} -> {r.status_code}")
        assert not open_routes, f"routes open without a token in production: {open_routes}"
        assert checked >= 5
        # Routes hidden from the schema are gated too.
        for path, methods, _ in _api_routes(app):
            url = _concrete(path)
            if is_exempt(url, exempt):
                continue
            for method in methods - {"HEAD", "OPTIONS"}:
                r = await client.request(method, url)
                assert r.status_code == 401, f"{method} {path} -> {r.status_code}"


async def test_admin_routes_answer_403_to_a_normal_user_in_production(make_app, clean_state):
    async with make_app(**PROD) as (app, client):
        _with_probe_admin_route(app)
        service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
        email = f"plain-{uuid.uuid4().hex[:6]}@example.com"
        await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": "plain-pass-123"},
            headers=service,
        )
        r = await client.post(
            "/api/v1/auth/login",
            data={"username": email, "password": "plain-pass-123"},
            headers=service,
        )
        user = {"Authorization": f"Bearer {r.json()['access_token']}"}
        admin_routes = [
            (path, methods)
            for path, methods, route in _api_routes(app)
            if _admin_only(route.dependant)
        ]
        assert admin_routes, "the walk found no admin route (the probe route is missing?)"
        for path, methods in admin_routes:
            for method in methods - {"HEAD", "OPTIONS"}:
                r = await client.request(method, _concrete(path), headers=user)
                assert r.status_code == 403, f"{method} {path} -> {r.status_code}"
                assert r.json()["code"] == "forbidden"
                # The service token is not an administrator either.
                r = await client.request(method, _concrete(path), headers=service)
                assert r.status_code == 403, f"{method} {path} (service) -> {r.status_code}"


# --- secrets never reach the logs ----------------------------------------------------------


async def test_logs_never_contain_passwords_tokens_or_authorization_values(make_app, clean_state):
    password = "hunter2-Very-Secret-pw"
    api_keys = {
        "gemini": "AIzaSyD-test-gemini-key-000000000000",
        "openai": "sk-test-openai-0123456789",
    }
    kakao = "kakao-access-token-abcdef0123456789"
    lines: list[str] = []
    async with make_app(
        log={"level": "DEBUG"},
        security={"access_token": SERVICE_TOKEN},
        llm={"gemini_api_key": api_keys["gemini"], "openai_api_key": api_keys["openai"]},
        alerts={"kakao_access_token": kakao, "channels": "kakao"},
    ) as (_app, client):
        sink = logger.add(lines.append, level=0, format="{message} | {extra} | {exception}")
        try:
            email = f"logs-{uuid.uuid4().hex[:6]}@example.com"
            await client.post("/api/v1/auth/register", json={"email": email, "password": password})
            r = await client.post(
                "/api/v1/auth/login", data={"username": email, "password": password}
            )
            jwt_token = r.json()["access_token"]
            await client.post(
                "/api/v1/auth/login", json={"email": email, "password": "wrong-" + password}
            )
            await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {jwt_token}"})
            await client.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
            )
            await client.get("/api/v1/users/me", headers={"Authorization": f"Basic {password}"})
            await client.get(f"/api/v1/users/me?access_token={jwt_token}")
            # Things that log secrets by accident: exceptions and f-strings with headers.
            logger.info("calling Kakao with Authorization: Bearer {}", kakao)
            logger.info("retrying with {}", {"api_key": api_keys["openai"], "password": password})
            logger.warning(f"gemini url https://x.test/v1?key={api_keys['gemini']}")
            logger.opt(exception=ValueError(f"bad token {jwt_token}")).error("login failed")
        finally:
            logger.remove(sink)
    text = "\n".join(lines)
    assert "logs-" in text or "/api/v1/auth/login" in text, "nothing was captured"
    secrets = [password, jwt_token, SERVICE_TOKEN, kakao, *api_keys.values()]
    leaked = [s[:6] + "…" for s in secrets if s in text]
    assert not leaked, f"secrets found in logs: {leaked}"
    assert not re.search(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.", text)


# --- encryption key required with Kakao in production -------------------------------------


def test_production_with_kakao_requires_a_data_encryption_key(settings_factory):
    base = {
        "environment": "production",
        "security": {"access_token": SERVICE_TOKEN},
        "alerts": {"kakao_refresh_token": "kakao-refresh-0123456789"},
    }
    with pytest.raises(ConfigurationError, match="DATA_ENCRYPTION_KEY"):
        create_app(settings_factory(**base))
    ok = settings_factory(
        **{**base, "security": {"access_token": SERVICE_TOKEN, "data_encryption_key": "k" * 44}}
    )
    assert "DATA_ENCRYPTION_KEY" not in ok.insecure_secrets()
    create_app(ok)
    # Without Kakao there is nothing to encrypt, so no key is needed.
    no_kakao = settings_factory(environment="production", security={"access_token": SERVICE_TOKEN})
    assert no_kakao.insecure_secrets() == []
