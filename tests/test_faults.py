"""Fault tests against real services: Redis stopped mid-run, the database unreachable.

Each fault is real: a private `redis-server` that is stopped and started again, and a TCP
proxy in front of the real PostgreSQL that drops every connection. The app is never
restarted; it has to notice the fault, keep serving what it can, and recover by itself.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy.engine import make_url

from tests.conftest import register_and_login
from tests.faults import CuttableProxy, PrivateRedis


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def health(client) -> dict:
    r = await client.get("/health")
    return {"http": r.status_code, **r.json()}


async def traffic(client, auth: dict[str, str], paths: set[str]) -> dict[str, int]:
    """One request to each endpoint that uses Redis when it is up; status by name."""
    codes = {"me": (await client.get("/api/v1/users/me", headers=auth)).status_code}
    if "/api/v1/events" in paths:
        r = await client.post(
            "/api/v1/events",
            headers=auth,
            json={
                "source_id": "redis-fault-cam",
                "event_type": "PROBS",
                "timestamp": datetime.now(UTC).isoformat(),
                "probs": {"normal": 0.9, "fall": 0.1},
            },
        )
        codes["ingest"] = r.status_code
    if "/api/v1/events/recent" in paths:
        r = await client.get(
            "/api/v1/events/recent", params={"source_id": "redis-fault-cam"}, headers=auth
        )
        codes["recent"] = r.status_code
    if "/api/v1/behavior/analyze" in paths:
        r = await client.post(
            "/api/v1/behavior/analyze", headers=auth, json=await analyze_body(client)
        )
        codes["analyze"] = r.status_code
    return codes


async def analyze_body(client) -> dict:
    """A valid analyze request for whatever shape the shipped model expects."""
    meta = (await client.get("/api/v1/behavior/model")).json()
    features = next(
        (meta[k] for k in ("input_size", "num_features", "n_features", "feature_dim") if k in meta),
        None,
    )
    assert isinstance(features, int), f"cannot tell the model's feature count from {meta}"
    return {"sequence": [[0.1] * features for _ in range(8)], "source_id": "redis-fault-cam"}


async def recent_source(client, auth) -> str | None:
    r = await client.get(
        "/api/v1/events/recent", params={"source_id": "redis-fault-cam"}, headers=auth
    )
    return r.json().get("served_from") if r.status_code == 200 else None


async def test_redis_stopped_mid_run_degrades_health_keeps_2xx_and_recovers(make_app, clean_state):
    redis = PrivateRedis().start()
    try:
        async with make_app(
            redis={"url": redis.url, "retry_interval_secs": 0.2, "socket_timeout_secs": 0.5},
            rate_limit={"enabled": True},  # the limiter keeps Redis in every request's path
        ) as (app, client):
            paths = set(app.openapi()["paths"])
            prefix = app.state.container.redis().key("ratelimit")
            token = await register_and_login(client)
            auth = {"Authorization": f"Bearer {token}"}
            codes = await traffic(client, auth, paths)
            assert all(200 <= c < 300 for c in codes.values()), codes
            report = await health(client)
            assert report["status"] == "healthy", report
            assert report["services"]["redis"]["status"] == "healthy"
            assert redis.keys(prefix + "*"), "counters should be in Redis while it is up"
            if "/api/v1/events/recent" in paths:
                assert await recent_source(client, auth) == "redis"

            redis.stop()
            started = time.monotonic()
            for _ in range(5):
                codes = await traffic(client, auth, paths)
                assert all(200 <= c < 300 for c in codes.values()), codes
            r = await client.post(
                "/api/v1/auth/login", data={"username": "x@y.co", "password": "wrong-pass-1"}
            )
            assert r.status_code == 401
            assert time.monotonic() - started < 10, "requests must not wait on a dead Redis"
            report = await health(client)
            assert report["http"] == 200
            assert report["status"] == "degraded"
            assert report["services"]["redis"]["status"] == "down"
            assert "sentinel_redis_up 0.0" in (await client.get("/metrics")).text
            if "/api/v1/events/recent" in paths:
                assert await recent_source(client, auth) == "database"

            redis.start()  # same port, empty: the app must find it again by itself
            report = await wait_for(lambda: _healthy(client), timeout=10)
            assert report["services"]["redis"]["status"] == "healthy"
            for _ in range(2):
                codes = await traffic(client, auth, paths)
                assert all(200 <= c < 300 for c in codes.values()), codes
            assert redis.keys(prefix + "*"), "after recovery the counters go to Redis again"
            # A connection broken by the restart may still flip Redis down once more while it
            # is replaced; the app settles on Redis by itself.
            await wait_for(lambda: _gauge_up(client), timeout=10)
            if "/api/v1/events/recent" in paths:
                await wait_for(lambda: _served_from_redis(client, auth), timeout=10)
    finally:
        redis.stop()


async def _served_from_redis(client, auth) -> bool:
    return await recent_source(client, auth) == "redis"


async def _gauge_up(client) -> bool:
    return "sentinel_redis_up 1.0" in (await client.get("/metrics")).text


async def _healthy(client):
    report = await health(client)
    return report if report["status"] == "healthy" else None


async def test_database_unreachable_gives_503_and_unhealthy_then_recovers(
    make_app, network_database_url, clean_state
):
    url = make_url(network_database_url)
    proxy = await CuttableProxy(url.host or "127.0.0.1", url.port or 5432).start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        async with make_app(
            db={"url": through_proxy, "connect_timeout_secs": 1.0, "pool_timeout_secs": 2.0}
        ) as (
            _,
            client,
        ):
            token = await register_and_login(client)
            auth = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 200

            await proxy.cut()
            started = time.monotonic()
            r = await client.get("/api/v1/users/me", headers=auth)
            assert r.status_code == 503, r.text
            body = r.json()
            assert set(body) == {"detail", "code", "request_id"}
            assert body["code"] == "database_unavailable"
            assert "database is unavailable" in body["detail"]
            assert "Traceback" not in r.text and "asyncpg" not in r.text
            assert r.headers["retry-after"]
            r = await client.post(
                "/api/v1/auth/register",
                json={"email": "late@example.com", "password": "late-pass-1"},
            )
            assert r.status_code == 503 and r.json()["code"] == "database_unavailable"
            report = await health(client)
            assert report["http"] == 503 and report["status"] == "unhealthy"
            assert report["services"]["database"]["status"] == "down"
            assert (await client.get("/health/ready")).status_code == 503
            assert (await client.get("/health/live")).status_code == 200
            assert time.monotonic() - started < 15, "each failing request must end quickly"

            await proxy.restore()
            await wait_for(lambda: _healthy(client), timeout=15, interval=0.3)
            r = await client.get("/api/v1/users/me", headers=auth)
            assert r.status_code == 200, r.text
    finally:
        await proxy.close()


async def test_pooled_connections_killed_by_the_server_while_idle_are_replaced_unseen(
    make_app, network_database_url, clean_state, monkeypatch
):
    """No ping per checkout (it cost a round trip per transaction): an idle connection is
    pinged before reuse, so a database restart between requests costs no request an error."""
    import asyncpg

    from app.core import database

    url = make_url(network_database_url)
    async with make_app(db={"url": network_database_url}) as (_, client):
        token = await register_and_login(client)
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(3):
            assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 200
        admin = await asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, database="postgres"
        )
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND application_name = 'sentinel' AND pid <> pg_backend_pid()",
                url.database,
            )
        finally:
            await admin.close()
        assert killed >= 1
        monkeypatch.setattr(database, "PING_IDLE_SECS", 0.0)
        for _ in range(3):
            r = await client.get("/api/v1/users/me", headers=auth)
            assert r.status_code == 200, r.text
