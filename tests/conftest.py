"""Test harness: real PostgreSQL + Redis by default, or the embedded default on request.

- PostgreSQL (`TEST_DATABASE_URL`, default postgresql+asyncpg://postgres@127.0.0.1:5432): a fresh
  database is created for this test session (so parallel runs never collide), migrated once, and
  dropped at the end. `TEST_DATABASE_URL=sqlite` uses a SQLite file instead.
- Redis (`TEST_REDIS_URL`, default redis://127.0.0.1:6379/0): every key gets a per-session prefix,
  removed after each test. `TEST_REDIS_URL=none` runs without Redis.
- A service that cannot be reached fails the run; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import sys
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
# Real PostgreSQL and Redis on 127.0.0.1 unless told otherwise; `TEST_DATABASE_URL=sqlite` and
# `TEST_REDIS_URL=none` run the suite on the embedded default (SQLite file, no Redis).
_DB_URL = (
    os.environ.get("TEST_DATABASE_URL")
    or os.environ.get("DATABASE_URL")
    or "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
_REDIS_URL = (
    os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)
if _REDIS_URL.lower() in {"none", "off", "no"}:
    _REDIS_URL = ""
# A few tests need a network PostgreSQL or a Redis by nature (two processes sharing a cooldown,
# cutting the TCP link to the database). They use these even when the suite itself runs on
# SQLite without Redis, and fail (never skip) when the services do not answer.
SHARED_REDIS_URL = _REDIS_URL or "redis://127.0.0.1:6379/0"
SHARED_PG_URL = (
    _DB_URL
    if _DB_URL.startswith("postgresql")
    else "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def _pg_admin_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


@asynccontextmanager
async def pg_database(base_url: str, name: str, who: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database `name` beside `base_url`'s, dropped afterwards; fails
    the test (`<who> is unreachable`) when PostgreSQL does not answer."""
    admin = create_async_engine(_pg_admin_url(base_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        await admin.dispose()
        pytest.fail(f"{who} is unreachable: {exc!r}")
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sentinel")


@pytest.fixture(scope="session")
async def database_url(tmp_root: Path) -> AsyncIterator[str]:
    """A migrated, empty database for this session."""
    if _DB_URL.startswith("postgresql"):
        async with pg_database(
            _DB_URL, f"sentinel_test_{SESSION_ID}", "TEST_DATABASE_URL is set but PostgreSQL"
        ) as url:
            await asyncio.to_thread(run_migrations, url)
            yield url
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


async def _drop_session_keys(url: str) -> None:
    from redis import asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=2)
    try:
        keys = [k async for k in client.scan_iter(match=REDIS_PREFIX + "*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def shared_redis_url(redis_url: str) -> AsyncIterator[str]:
    """A real Redis for tests that need one whatever the suite's mode (must answer); each
    such test starts and ends without this session's keys."""
    if redis_url:
        yield redis_url  # the suite's own Redis: `clean_state` empties it
        return
    from redis import asyncio as aioredis

    client = aioredis.from_url(SHARED_REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(f"this test needs Redis at {SHARED_REDIS_URL} and it is unreachable: {exc!r}")
    finally:
        await client.aclose()
    await _drop_session_keys(SHARED_REDIS_URL)
    yield SHARED_REDIS_URL
    await _drop_session_keys(SHARED_REDIS_URL)


@pytest.fixture(scope="session")
async def network_database_url(database_url: str) -> AsyncIterator[str]:
    """A migrated PostgreSQL database reached over TCP: the suite's own, or one made for this."""
    if database_url.startswith("postgresql"):
        yield database_url
        return
    async with pg_database(
        SHARED_PG_URL,
        f"sentinel_test_net_{SESSION_ID}",
        f"this test needs PostgreSQL at {SHARED_PG_URL} and it",
    ) as url:
        await asyncio.to_thread(run_migrations, url)
        yield url


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
            # Scheduled retention off: tests run it explicitly with back-dated rows.
            "retention": {"enabled": False},
            # With Redis the test app runs queued jobs itself (no `sentinel worker` here).
            # Each app its own queue, so one app never runs another's jobs.
            "jobs": {
                "retry_base_secs": 0.05,
                "retry_max_secs": 0.2,
                "web_consumes": True,
                "queue_name": f"jobs-{uuid.uuid4().hex[:8]}",
            },
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
            # As a load balancer would: requests go to a process once it says ready.
            await app.state.container.assistant_warmup().wait()
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
async def client(app_and_client, clean_state) -> AsyncIterator[httpx.AsyncClient]:
    app, http = app_and_client
    yield http
    # The shared app buffers LLM usage and flushes it on a timer: write this test's counts
    # now, so they are deleted with its rows instead of landing in the next test's tables.
    await app.state.container.llm_stats().flush()


@pytest.fixture
async def clean_state(database_url: str, redis_url: str) -> AsyncIterator[None]:
    """Each test starts from empty tables and no Redis keys of this session."""
    yield
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
        if conn.dialect.name == "postgresql":
            from app.repositories.partitions import EVENT_IDS  # PostgreSQL only, not a model

            await conn.execute(EVENT_IDS.delete())
    await engine.dispose()
    if redis_url:
        from redis import asyncio as aioredis

        client = aioredis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(match=REDIS_PREFIX + "*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def clear_of_minute_edge(margin: float = 10.0) -> None:
    """Wait, if need be, until at least `margin` seconds are left in this wall-clock minute.

    Route-group limits count with a sliding-window counter, which weights the previous
    minute's hits: a test that counts "N per minute" exactly must make its hits and its check
    in one minute, or a run that crosses the edge sees N - 0.001 and no 429.
    """
    import time

    left = 60.0 - time.time() % 60.0
    if left < margin:
        await asyncio.sleep(left + 0.05)


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


async def wait_for_job(client: httpx.AsyncClient, job_id: str, timeout: float = 240.0) -> dict:
    """Poll `GET /api/v1/jobs/{id}` until the job succeeds or fails (bounded; generous because
    the first embedding loads the model, slow on a loaded machine)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        if job["state"] in ("succeeded", "failed"):
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job still {job['state']}: {job}"
        await asyncio.sleep(0.05)


_SESSION_EXIT: dict[str, int] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _SESSION_EXIT["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the process once pytest is done: torch's triton (nanobind) prints reference-leak
    warnings while the interpreter shuts down, after the summary, and the summary must stay
    the last thing a run prints (CI reads it)."""
    if "status" in _SESSION_EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_SESSION_EXIT["status"])
