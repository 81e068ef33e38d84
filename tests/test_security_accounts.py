"""Issue 29, accounts: stored invites (finding 1), a lockout that cannot be turned on the owner
and password reset by e-mail (finding 3), the current-password check counted as a sign-in
failure (finding 10) and Google sign-in bound to Google's `sub` with checked names (finding 11).

Every test runs a production app; client addresses are set per request through the ASGI
transport's `client`, as a direct peer would be.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from loguru import logger

from app.core.security import Role
from tests.fakes.receivers import SmtpServer
from tests.test_authz import PROD, SERVICE, SERVICE_TOKEN
from tests.test_google_signin import CLIENT_ID, FakeGoogleKeys

ADMIN_EMAIL = "boss@example.com"
ADMIN_PASSWORD = "boss-pass-123"
RESET_URL = "https://sentinel.example.com/console/#reset="


@pytest.fixture
def google() -> Iterator[FakeGoogleKeys]:
    fake = FakeGoogleKeys()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def settings(registration: str = "open", google: FakeGoogleKeys | None = None, **extra: Any):
    """Production, rate limits on (the route-group limit wide, so only the sign-in limits
    under test answer 429), a short slow-down cap to keep the tests quick."""
    security: dict[str, Any] = {
        "access_token": SERVICE_TOKEN,
        "registration": registration,
        "login_slowdown_max_secs": 0.2,
    }
    if google is not None:
        security |= {
            "google_client_id": CLIENT_ID,
            "google_jwks_url": google.url,
            "google_timeout_secs": 3,
            "google_jwks_refresh_cooldown_secs": 0,
        }
    security |= extra.pop("security", {})
    return {
        **PROD,
        "security": security,
        "rate_limit": {"enabled": True, "auth": "10000/minute", "default": "10000/minute"},
        **extra,
    }


@asynccontextmanager
async def client_at(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests come from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://sentinel.test") as c:
        yield c


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


def bearer(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def admin_headers(app: Any, client: httpx.AsyncClient, email: str = ADMIN_EMAIL) -> dict:
    await app.state.container.user_service().create_admin(email, ADMIN_PASSWORD)
    return bearer(await login(client, email, ADMIN_PASSWORD))


async def register(client: httpx.AsyncClient, email: str, invite: str | None = None):
    body = {"email": email, "password": "pass-1234", "invite": invite}
    return await client.post("/api/v1/auth/register", json=body)


# --- finding 1: invites ---------------------------------------------------------------------


async def test_an_admin_invite_makes_one_admin_then_answers_like_a_bad_code(make_app, clean_state):
    async with make_app(**settings("invite")) as (app, client):
        admin = await admin_headers(app, client)
        r = await client.post("/api/v1/admin/invites", json={"role": "admin"}, headers=admin)
        assert r.status_code == 422 and "confirm_admin" in r.text
        r = await client.post(
            "/api/v1/admin/invites", json={"expires_in_hours": 721}, headers=admin
        )
        assert r.status_code == 422
        r = await client.post(
            "/api/v1/admin/invites", json={"role": "admin", "confirm_admin": True}, headers=admin
        )
        assert r.status_code == 201, r.text
        invite = r.json()
        assert invite["max_uses"] == 1 and invite["role"] == "admin"
        code = invite["code"]
        assert (await register(client, "first@example.com", code)).status_code == 201
        bad = await register(client, "x@example.com", "not-a-code")
        for email in ("second@example.com", "third@example.com"):
            r = await register(client, email, code)
            assert r.status_code == 403 and r.json()["code"] == "registration_invite_only"
            assert r.json()["detail"] == bad.json()["detail"]
        me = await client.get(
            "/api/v1/users/me",
            headers=bearer(await login(client, "first@example.com", "pass-1234")),
        )
        assert me.json()["role"] == "admin"
        assert (await login(client, "second@example.com", "pass-1234")).status_code == 401
        # The list shows the use, never a code.
        listed = (await client.get("/api/v1/admin/invites", headers=admin)).json()
        assert listed[0]["uses"] == 1 and listed[0]["status"] == "exhausted"
        assert listed[0]["used_by"][0]["email"] == "first@example.com"
        assert listed[0]["used_by"][0]["method"] == "password"
        assert code not in str(listed) and "code" not in listed[0]
        # Only admins issue, list and revoke invites.
        await app.state.container.user_service().set_role("first@example.com", Role.OPERATOR)
        operator = bearer(await login(client, "first@example.com", "pass-1234"))
        for who in (operator, SERVICE):
            assert (
                await client.post("/api/v1/admin/invites", json={}, headers=who)
            ).status_code == 403
            assert (await client.get("/api/v1/admin/invites", headers=who)).status_code == 403


async def test_two_concurrent_sign_ups_spend_a_single_use_invite_once(make_app, clean_state):
    async with make_app(**settings("invite")) as (app, client):
        admin = await admin_headers(app, client)
        code = (await client.post("/api/v1/admin/invites", json={}, headers=admin)).json()["code"]
        results = await asyncio.gather(
            *(register(client, f"racer{i}@example.com", code) for i in range(2))
        )
        assert sorted(r.status_code for r in results) == [201, 403], [r.text for r in results]
        listed = (await client.get("/api/v1/admin/invites", headers=admin)).json()
        assert listed[0]["uses"] == 1 and len(listed[0]["used_by"]) == 1


async def test_an_invite_is_spent_by_google_sign_in_too(make_app, google, clean_state):
    async with make_app(**settings("invite", google=google)) as (app, client):
        admin = await admin_headers(app, client)
        code = (
            await client.post("/api/v1/admin/invites", json={"role": "operator"}, headers=admin)
        ).json()["code"]
        r = await client.post(
            "/api/v1/auth/google", json={"id_token": google.token(), "invite": code}
        )
        assert r.status_code == 200, r.text
        assert (await client.get("/api/v1/users/me", headers=bearer(r))).json()[
            "role"
        ] == "operator"
        r = await client.post(
            "/api/v1/auth/google",
            json={"id_token": google.token(sub="another", email="b@example.com"), "invite": code},
        )
        assert r.status_code == 403 and r.json()["code"] == "registration_invite_only"
        assert (await register(client, "c@example.com", code)).status_code == 403
        use = (await client.get("/api/v1/admin/invites", headers=admin)).json()[0]["used_by"]
        assert [u["method"] for u in use] == ["google"]


async def test_an_invite_dies_with_its_issuer_and_can_be_revoked(make_app, clean_state):
    async with make_app(**settings("invite")) as (app, client):
        users = app.state.container.user_service()
        first = await admin_headers(app, client)
        second = await admin_headers(app, client, "second-admin@example.com")
        by_first = (await client.post("/api/v1/admin/invites", json={}, headers=first)).json()
        by_second = (
            await client.post("/api/v1/admin/invites", json={"max_uses": 5}, headers=second)
        ).json()
        # The first admin is demoted: their invite is dead; the second's still works.
        await users.set_role(ADMIN_EMAIL, Role.VIEWER)
        assert (await register(client, "a@example.com", by_first["code"])).status_code == 403
        assert (await register(client, "b@example.com", by_second["code"])).status_code == 201
        listed = {
            i["id"]: i for i in (await client.get("/api/v1/admin/invites", headers=second)).json()
        }
        assert listed[by_first["id"]]["status"] == "issuer_gone"
        # Revoked: refused from now on; an unknown id is 404.
        r = await client.delete(f"/api/v1/admin/invites/{by_second['id']}", headers=second)
        assert r.status_code == 204
        assert (await register(client, "c@example.com", by_second["code"])).status_code == 403
        r = await client.delete(
            "/api/v1/admin/invites/00000000-0000-0000-0000-000000000000", headers=second
        )
        assert r.status_code == 404 and r.json()["code"] == "invite_not_found"
        # A deactivated issuer's invites die too.
        third = await admin_headers(app, client, "third-admin@example.com")
        code = (await client.post("/api/v1/admin/invites", json={}, headers=third)).json()["code"]
        me = (await client.get("/api/v1/users/me", headers=third)).json()
        await users.update(uuid.UUID(me["id"]), is_active=False)
        assert (await register(client, "d@example.com", code)).status_code == 403


# --- finding 3: lockout and password reset --------------------------------------------------


async def test_failures_from_many_addresses_slow_the_account_but_never_lock_out_its_owner(
    make_app, clean_state
):
    async with make_app(**settings()) as (app, client):
        assert (await register(client, "owner@example.com")).status_code == 201
        for i in range(10):
            async with client_at(app, f"203.0.113.{i + 1}") as attacker:
                r = await login(attacker, "owner@example.com", f"guess-{i}")
                assert r.status_code == 401
        async with client_at(app, "198.51.100.7") as owner:
            started = time.monotonic()
            r = await login(owner, "owner@example.com", "pass-1234")
            assert r.status_code == 200, r.text
            # Slowed down (the capped delay), not refused.
            assert time.monotonic() - started >= 0.2
        # One client that keeps guessing is refused for this account; others are not.
        async with client_at(app, "203.0.113.99") as guesser:
            for i in range(10):
                assert (await login(guesser, "owner@example.com", f"x-{i}")).status_code == 401
            r = await login(guesser, "owner@example.com", "pass-1234")
            assert r.status_code == 429 and "Retry-After" in r.headers
            assert (await login(guesser, "other@example.com", "whatever-1")).status_code == 401
            async with client_at(app, "198.51.100.8") as owner:
                assert (await login(owner, "owner@example.com", "pass-1234")).status_code == 200
            # `sentinel unlock` (the service behind it) clears the counters.
            await app.state.container.user_service().unlock("Owner@Example.com")
            assert (await login(guesser, "owner@example.com", "pass-1234")).status_code == 200


async def test_unlock_cli_clears_an_accounts_counters(
    make_app, settings_factory, monkeypatch, redis_url, clean_state
):
    from app.cli import main

    config = settings()
    monkeypatch.setattr("app.cli.Settings", lambda: settings_factory(**config))
    async with make_app(**config) as (app, client):
        assert (await register(client, "locked@example.com")).status_code == 201
        async with client_at(app, "203.0.113.50") as guesser:
            for i in range(10):
                await login(guesser, "locked@example.com", f"x-{i}")
            assert (await login(guesser, "locked@example.com", "pass-1234")).status_code == 429
            assert await asyncio.to_thread(main, ["unlock", "locked@example.com"]) == 0
            if redis_url:  # without Redis each process counts for itself
                r = await login(guesser, "locked@example.com", "pass-1234")
                assert r.status_code == 200


def reset_settings(smtp: SmtpServer, **security: Any) -> dict[str, Any]:
    return settings(
        alerts={
            **PROD["alerts"],
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "email_from": "sentinel@example.com",
        },
        security={"password_reset_url": RESET_URL, **security},
    )


async def test_password_reset_mails_a_single_use_token_and_revokes_old_sessions(
    make_app, smtp, clean_state
):
    smtp.reset()
    logged: list[str] = []
    async with make_app(**reset_settings(smtp)) as (app, client):
        assert (await register(client, "forgot@example.com")).status_code == 201
        old = bearer(await login(client, "forgot@example.com", "pass-1234"))
        sink = logger.add(logged.append, format="{level} {message}")
        try:
            known = await client.post(
                "/api/v1/auth/password-reset", json={"email": "Forgot@example.com"}
            )
            unknown = await client.post(
                "/api/v1/auth/password-reset", json={"email": "nobody@example.com"}
            )
            second = await client.post(
                "/api/v1/auth/password-reset", json={"email": "forgot@example.com"}
            )
            await app.state.container.user_service().reset_mail_sent()  # mail goes after the answer
        finally:
            logger.remove(sink)
        assert known.status_code == unknown.status_code == second.status_code == 202
        assert known.json() == unknown.json()
        assert len(smtp.messages) == 2
        assert smtp.envelopes[0][1] == ["forgot@example.com"]
        texts = [m.get_content() for m in smtp.messages]
        assert "비밀번호" in texts[0] and "reset the password" in texts[0]
        first_token, token = (re.search(re.escape(RESET_URL) + r"(\S+)", t)[1] for t in texts)
        assert not [line for line in logged if token in line or first_token in line]
        # The newer mail made the older token unusable.
        r = await client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": first_token, "password": "new-pass-5678"},
        )
        assert r.status_code == 403 and r.json()["code"] == "invalid_reset_token"
        r = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": token, "password": "weak"}
        )
        assert r.status_code == 422
        r = await client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token, "password": "new-pass-5678"},
        )
        assert r.status_code == 204, r.text
        assert (await client.get("/api/v1/users/me", headers=old)).status_code == 401
        assert (await login(client, "forgot@example.com", "pass-1234")).status_code == 401
        assert (await login(client, "forgot@example.com", "new-pass-5678")).status_code == 200
        r = await client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token, "password": "other-pass-999"},
        )
        assert r.status_code == 403 and "used or expired" in r.json()["detail"]


async def test_password_reset_is_limited_per_client(make_app, smtp, clean_state):
    smtp.reset()
    async with make_app(**reset_settings(smtp)) as (app, _):
        async with client_at(app, "203.0.113.77") as c:
            for i in range(5):
                r = await c.post("/api/v1/auth/password-reset", json={"email": f"u{i}@example.com"})
                assert r.status_code == 202
            r = await c.post("/api/v1/auth/password-reset", json={"email": "u9@example.com"})
            assert r.status_code == 429 and "Retry-After" in r.headers
        async with client_at(app, "203.0.113.78") as c:
            r = await c.post("/api/v1/auth/password-reset", json={"email": "u9@example.com"})
            assert r.status_code == 202


async def test_password_reset_without_smtp_answers_the_same_and_warns(make_app, clean_state):
    logged: list[str] = []
    async with make_app(**settings()) as (_, client):
        assert (await register(client, "nosmtp@example.com")).status_code == 201
        sink = logger.add(logged.append, format="{level} {message}")
        try:
            r = await client.post(
                "/api/v1/auth/password-reset", json={"email": "nosmtp@example.com"}
            )
        finally:
            logger.remove(sink)
        assert r.status_code == 202
        warnings = [line for line in logged if line.startswith("WARNING") and "SMTP_HOST" in line]
        assert warnings and not [line for line in logged if "nosmtp@" in line]


# --- finding 10: the current-password check is a sign-in attempt ---------------------------


async def test_current_password_guesses_are_limited_like_sign_ins(make_app, clean_state):
    async with make_app(**settings()) as (app, client):
        assert (await register(client, "victim@example.com")).status_code == 201
        async with client_at(app, "203.0.113.10") as thief:
            stolen = bearer(await login(thief, "victim@example.com", "pass-1234"))
            codes = []
            for i in range(12):
                r = await thief.post(
                    "/api/v1/users/me/password",
                    json={"current_password": f"guess-{i}", "new_password": "owned-1234"},
                    headers=stolen,
                )
                codes.append(r.status_code)
            assert codes[:10] == [403] * 10 and codes[10:] == [429, 429]
            # The same limiter: the thief's sign-ins for this account are refused too.
            assert (await login(thief, "victim@example.com", "pass-1234")).status_code == 429
        async with client_at(app, "198.51.100.20") as owner:
            assert (await login(owner, "victim@example.com", "pass-1234")).status_code == 200


# --- finding 11: Google sign-in ------------------------------------------------------------


async def test_google_sub_is_stored_and_an_email_match_alone_does_not_link(
    make_app, google, clean_state
):
    async with make_app(**settings(google=google)) as (app, client):
        admin = await admin_headers(app, client)
        assert (await register(client, "victim@example.com")).status_code == 201
        token = google.token(sub="attacker-sub", email="victim@example.com")
        r = await client.post("/api/v1/auth/google", json={"id_token": token})
        assert r.status_code == 409 and r.json()["code"] == "google_link_refused"
        r = await client.post(
            "/api/v1/auth/google", json={"id_token": token, "password": "wrong-pass-1"}
        )
        assert r.status_code == 403
        # An admin allows linking once: the next Google sign-in binds the account to its sub.
        victim = bearer(await login(client, "victim@example.com", "pass-1234"))
        me = (await client.get("/api/v1/users/me", headers=victim)).json()
        r = await client.patch(
            f"/api/v1/admin/users/{me['id']}", json={"allow_google_link": True}, headers=admin
        )
        assert r.status_code == 200
        token = google.token(sub="owner-sub", email="victim@example.com")
        r = await client.post("/api/v1/auth/google", json={"id_token": token})
        assert r.status_code == 200, r.text
        assert (await client.get("/api/v1/users/me", headers=bearer(r))).json()["id"] == me["id"]
        # Another Google account with the same e-mail: 409; the bound one signs in by sub,
        # even after its e-mail changed at Google.
        r = await client.post(
            "/api/v1/auth/google",
            json={"id_token": google.token(sub="other-sub", email="victim@example.com")},
        )
        assert r.status_code == 409 and r.json()["code"] == "google_account_mismatch"
        r = await client.post(
            "/api/v1/auth/google",
            json={"id_token": google.token(sub="owner-sub", email="renamed@example.com")},
        )
        assert r.status_code == 200
        assert (await client.get("/api/v1/users/me", headers=bearer(r))).json()["id"] == me["id"]


async def test_google_link_with_the_current_password(make_app, google, clean_state):
    async with make_app(**settings(google=google)) as (_, client):
        assert (await register(client, "me@example.com")).status_code == 201
        token = google.token(sub="my-sub", email="me@example.com")
        r = await client.post(
            "/api/v1/auth/google", json={"id_token": token, "password": "pass-1234"}
        )
        assert r.status_code == 200, r.text
        r = await client.post("/api/v1/auth/google", json={"id_token": token})
        assert r.status_code == 200


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ('<img src=x onerror="alert(1)">', "must not contain < or >"),
        ("evil\u202etxt.exe", "text-direction character (U+202E)"),
        ("line\nbreak", "control character"),
        ("x" * 300 + "\x00", "at most 200 characters"),
    ],
)
async def test_google_names_are_checked_like_registration(
    make_app, google, clean_state, name, message
):
    async with make_app(**settings(google=google)) as (_, client):
        r = await client.post("/api/v1/auth/google", json={"id_token": google.token(name=name)})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "validation_error"
        assert message in r.json()["detail"] and "NUL" not in r.json()["detail"]
        r = await client.post(
            "/api/v1/auth/register",
            json={"email": "n@example.com", "password": "pass-1234", "name": name},
        )
        assert r.status_code == 422 and "NUL" not in r.text


async def test_a_text_too_long_for_its_column_is_told_so_not_nul():
    # The database's last-resort answer (finding 11's wrong message): SQLSTATE 22001 says the
    # text is too long; other data exceptions keep the NUL/number/date message.
    from fastapi import FastAPI
    from sqlalchemy import exc as sa_exc

    from app.core.errors import install_error_handlers

    class TooLong(Exception):
        sqlstate = "22001"

    class HasNul(Exception):
        sqlstate = "22021"

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/long")
    async def long() -> None:
        raise sa_exc.DBAPIError("INSERT", {}, TooLong())

    @app.get("/nul")
    async def nul() -> None:
        raise sa_exc.DBAPIError("INSERT", {}, HasNul())

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/long")
        assert r.status_code == 422 and "longer than its field" in r.json()["detail"]
        assert "NUL" not in r.json()["detail"]
        r = await client.get("/long", headers={"Accept-Language": "ko"})
        assert "필드 길이" in r.json()["detail"]
        r = await client.get("/nul")
        assert r.status_code == 422 and "NUL" in r.json()["detail"]
