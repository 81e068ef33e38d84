"""Rate limits per route group and principal: 429 with Retry-After, shared through Redis."""

from __future__ import annotations

import asyncio

import pytest

from app.core.rate_limit import route_group
from tests.conftest import clear_of_minute_edge, register_and_login


def limited(**groups: str) -> dict:
    return {"rate_limit": {"enabled": True, **groups}}


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/api/v1/auth/login", "auth"),
        ("/api/v1/events", "events"),
        ("/api/v1/events/batch", "events"),
        ("/event/payload", "events"),
        ("/api/v1/behavior/analyze", "analyze"),
        ("/behavior/analyze", "analyze"),
        ("/api/v1/rag/ask", "ask"),
        ("/api/v1/rag/ask/stream", "ask"),
        ("/api/v1/episodes/123", "default"),
        ("/api/v1/knowledge/docs", "default"),
        ("/health", None),
        ("/health/ready", None),
        ("/metrics", None),
        ("/openapi.json", None),
    ],
)
def test_paths_map_to_their_route_group(path, group):
    assert route_group(path) == group


async def test_burst_over_the_limit_gets_429_with_retry_after_and_error_shape(make_app):
    async with make_app(**limited(auth="3/minute")) as (_, client):
        await clear_of_minute_edge()
        for _ in range(3):
            r = await client.post("/api/v1/auth/login", json={"email": "a@b.co", "password": "x"})
            assert r.status_code in (401, 422)
        r = await client.post("/api/v1/auth/login", json={"email": "a@b.co", "password": "x"})
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        body = r.json()
        assert body["code"] == "rate_limited"
        assert "auth" in body["detail"] and "3 per 1 minute" in body["detail"]
        assert body["request_id"] == r.headers["x-request-id"]
        # Other groups keep their own budget; health is never limited.
        assert (await client.get("/api/v1/users/me")).status_code == 401
        for _ in range(5):
            assert (await client.get("/health/live")).status_code == 200


async def test_each_user_has_a_separate_budget(make_app, clean_state):
    async with make_app(**limited(default="2/minute")) as (_, client):
        alice = {"Authorization": f"Bearer {await register_and_login(client)}"}
        bob = {"Authorization": f"Bearer {await register_and_login(client)}"}
        await clear_of_minute_edge()
        assert (await client.get("/api/v1/users/me", headers=alice)).status_code == 200
        assert (await client.get("/api/v1/users/me", headers=alice)).status_code == 200
        assert (await client.get("/api/v1/users/me", headers=alice)).status_code == 429
        assert (await client.get("/api/v1/users/me", headers=bob)).status_code == 200
        # Anonymous callers are keyed by IP, apart from the users.
        assert (await client.get("/api/v1/users/me")).status_code == 401


async def test_counters_are_shared_between_processes_through_redis(
    make_app, redis_url, clean_state
):
    """Two apps stand in for two workers: with Redis they share one budget."""
    async with make_app(**limited(default="3/minute")) as (app1, one):
        async with make_app(**limited(default="3/minute")) as (app2, two):
            if redis_url:
                for a in (app1, app2):
                    for _ in range(50):  # a loaded machine can time out the first PING
                        if a.state.container.redis().is_up:
                            break
                        await asyncio.sleep(0.1)
            await clear_of_minute_edge()
            codes = [(await one.get("/api/v1/users/me")).status_code for _ in range(2)]
            codes.append((await two.get("/api/v1/users/me")).status_code)
            codes.append((await two.get("/api/v1/users/me")).status_code)
            assert codes[:3] == [401, 401, 401]
            # Without Redis each process counts alone (in-process fallback).
            assert codes[3] == (429 if redis_url else 401)
        if redis_url:
            redis = app1.state.container.redis().client()
            keys = [
                k
                async for k in redis.scan_iter(
                    match=app1.state.container.redis().key("ratelimit") + "*"
                )
            ]
            assert keys, "rate-limit counters should live in Redis under the app's key prefix"


async def test_sign_in_limits_hold_across_a_window_boundary(monkeypatch, redis_url, clean_state):
    """Three failures just before and after a minute boundary still block a fourth guess.

    CI caught this: a sliding-window counter weights the previous minute, reads 2.999 right
    after the boundary and let the fourth password through.
    """
    from app.core.rate_limit import RateLimiter
    from app.core.redis import RedisManager
    from app.core.settings import RateLimitSettings, RedisSettings, SecuritySettings
    from tests.conftest import REDIS_PREFIX

    boundary = 60.0 * 29_500_000  # a whole minute, in 2026
    now = [boundary - 0.25]
    monkeypatch.setattr("time.time", lambda: now[0])
    redis = RedisManager(RedisSettings(url=redis_url, key_prefix=REDIS_PREFIX))
    await redis.start()
    try:
        assert redis.is_up == bool(redis_url)
        limiter = RateLimiter(
            RateLimitSettings(enabled=True),
            redis,
            SecuritySettings(login_max_failures_per_account="3/minute"),
        )
        for at in (boundary - 0.25, boundary - 0.1, boundary + 0.02):
            now[0] = at
            assert await limiter.blocked("login_account", "victim") == 0
            assert (await limiter.hit("login_account", "victim")).allowed
        now[0] = boundary + 0.03
        wait = await limiter.blocked("login_account", "victim")
        assert 59 <= wait <= 60  # until the first failure is a minute old
        now[0] = boundary + 59.8  # the first failure has aged out: one more try
        assert await limiter.blocked("login_account", "victim") == 0
    finally:
        await redis.stop()
