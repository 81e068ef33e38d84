"""Test harness: real PostgreSQL/Redis when configured, SQLite without Redis otherwise.

- `TEST_DATABASE_URL` (or `DATABASE_URL`) pointing at PostgreSQL: a fresh database is created for this
  test session (so parallel runs never collide), migrated once, and dropped at the end.
- `TEST_REDIS_URL` (or `REDIS_URL`): every key gets a per-session prefix, removed after each test.
- A configured service that cannot be reached fails the run; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.database import run_migrations
from app.core.settings import Settings
from app.core.settings_doc import group_classes
from app.main import create_app
from app.models.base import Base

# Fails the run if any log line of the suite carries a credential.
pytest_plugins = ["tests.log_audit", "tests.fakes.fixtures"]

# The developer's shell must not leak into tests: tests set what they need explicitly.
for _var in list(os.environ):
    if _var in {
        "ENVIRONMENT",
        "JWT_SECRET",
        "ACCESS_TOKEN",
        "LOG_FILE_PATH",
        "DB_MIGRATE_ON_START",
    }:
        del os.environ[_var]

SESSION_ID = uuid.uuid4().hex[:10]
_DB_URL = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
_REDIS_URL = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or ""


def _pg_admin_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sentinel")


@pytest.fixture(scope="session")
async def database_url(tmp_root: Path) -> AsyncIterator[str]:
    """A migrated, empty database for this session."""
    if _DB_URL.startswith("postgresql"):
        name = f"sentinel_test_{SESSION_ID}"
        admin = create_async_engine(_pg_admin_url(_DB_URL), isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {exc!r}")
        url = make_url(_DB_URL).set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(run_migrations, url)
        yield url
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    elif _DB_URL.startswith("sqlite") or not _DB_URL:
        url = f"sqlite+aiosqlite:///{tmp_root / 'sentinel-test.db'}"
        await asyncio.to_thread(run_migrations, url)
        yield url
    else:
        pytest.fail(f"unsupported TEST_DATABASE_URL scheme: {_DB_URL.split(':')[0]}")


@pytest.fixture(scope="session")
async def redis_url() -> str:
    """The configured Redis (must answer) or '' for no Redis."""
    if not _REDIS_URL:
        return ""
    from redis import asyncio as aioredis

    client = aioredis.from_url(_REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(f"TEST_REDIS_URL is set but Redis is unreachable: {exc!r}")
    finally:
        await client.aclose()
    return _REDIS_URL


REDIS_PREFIX = f"sentinel-test-{SESSION_ID}:"


@pytest.fixture(scope="session")
def settings_factory(database_url: str, redis_url: str, tmp_root: Path) -> Callable[..., Settings]:
    """Build Settings for tests; keyword groups override fields, e.g. `security={"jwt_secret": "x"}`."""

    def build(**overrides: Any) -> Settings:
        groups: dict[str, dict[str, Any]] = {
            "db": {"url": database_url, "migrate_on_start": False},
            "redis": {"url": redis_url, "key_prefix": REDIS_PREFIX, "retry_interval_secs": 0.2},
            "log": {"level": "INFO", "access_log": True},
            "security": {"jwt_secret": "test-jwt-secret-for-the-suite-" + SESSION_ID + SESSION_ID},
            "model": {},
            "events": {"log_path": str(tmp_root / "events.jsonl")},
            "alerts": {
                "dispatch_interval_secs": 0.05,
                "retry_base_secs": 0.05,
                # Off in the shared app: tests that deliver alerts start their own app with
                # the fake Kakao server, and must not race a dispatcher aimed at real Kakao.
                "dispatcher_enabled": False,
            },
            "llm": {
                "chroma_path": str(tmp_root / "chroma"),
                "backoff_base_secs": 0.01,
                "backoff_max_secs": 0.04,
            },
            "rate_limit": {"enabled": False},
        }
        top: dict[str, Any] = {"environment": "development"}
        for key, value in overrides.items():
            if key in groups and isinstance(value, dict):
                groups[key].update(value)
            else:
                top[key] = value
        classes = group_classes(Settings)
        built = {name: classes[name](**values) for name, values in groups.items()}
        return Settings(**top, **built)

    return build


@pytest.fixture(scope="session")
def make_app(settings_factory: Callable[..., Settings]):
    """`async with make_app(**overrides) as (app, client):` a started app and an HTTP client.

    `container=` passes a container with providers already overridden.
    """

    @asynccontextmanager
    async def factory(
        container: Any = None, **overrides: Any
    ) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
        app = create_app(settings_factory(**overrides), container)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://sentinel.test", timeout=30
            ) as client:
                yield app, client

    return factory


@pytest.fixture(scope="session")
async def app_and_client(make_app) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with make_app() as pair:
        yield pair


@pytest.fixture(scope="session")
def app(app_and_client):
    return app_and_client[0]


@pytest.fixture
async def client(app_and_client, clean_state) -> httpx.AsyncClient:
    return app_and_client[1]


@pytest.fixture
async def clean_state(database_url: str, redis_url: str) -> AsyncIterator[None]:
    """Each test starts from empty tables and no Redis keys of this session."""
    yield
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
    await engine.dispose()
    if redis_url:
        from redis import asyncio as aioredis

        client = aioredis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(match=REDIS_PREFIX + "*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def register_and_login(
    client: httpx.AsyncClient, email: str | None = None, password: str = "s3cret-pass"
) -> str:
    """Create a user and return a bearer token."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/auth/login", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]
