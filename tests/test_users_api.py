"""Registration, login (form and JSON), /users/me and their errors."""

from __future__ import annotations

from tests.conftest import register_and_login


async def test_register_login_and_me_roundtrip(client):
    r = await client.post(
        "/api/v1/auth/register",
        json={"email": "Ops@Example.com", "password": "night-shift-7", "name": "Ops"},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["email"] == "ops@example.com"
    assert "password" not in r.text and "password_hash" not in body

    r = await client.post(
        "/api/v1/auth/login", data={"username": "ops@example.com", "password": "night-shift-7"}
    )
    assert r.status_code == 200
    token = r.json()
    assert token["token_type"] == "bearer" and token["expires_in"] > 0

    r = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert r.status_code == 200 and r.json()["email"] == "ops@example.com"
    assert r.json()["role"] == "viewer"  # a new account is a viewer


async def test_login_accepts_json_body(client):
    await register_and_login(client, "json@example.com", "json-pass-99")
    r = await client.post(
        "/api/v1/auth/login", json={"email": "json@example.com", "password": "json-pass-99"}
    )
    assert r.status_code == 200 and r.json()["access_token"]


async def test_registering_an_existing_email_answers_like_a_new_one(client):
    """Issue 16 finding 7: registration no longer tells who has an account (was 409)."""
    await register_and_login(client, "dup@example.com")
    new = await client.post(
        "/api/v1/auth/register", json={"email": "fresh@example.com", "password": "another-pass-1"}
    )
    taken = await client.post(
        "/api/v1/auth/register", json={"email": "DUP@example.com", "password": "another-pass-1"}
    )
    assert new.status_code == taken.status_code == 201
    assert new.json().keys() == taken.json().keys()
    assert new.json()["detail"] == taken.json()["detail"]
    # The existing account keeps its password.
    r = await client.post(
        "/api/v1/auth/login", data={"username": "dup@example.com", "password": "another-pass-1"}
    )
    assert r.status_code == 401


async def test_bad_credentials_are_401(client):
    await register_and_login(client, "who@example.com", "right-pass-1")
    r = await client.post(
        "/api/v1/auth/login", data={"username": "who@example.com", "password": "wrong-pass-1"}
    )
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = await client.post(
        "/api/v1/auth/login", data={"username": "nobody@example.com", "password": "wrong-pass-1"}
    )
    assert r.status_code == 401


async def test_weak_or_malformed_registration_is_422_with_field_errors(client):
    r = await client.post(
        "/api/v1/auth/register", json={"email": "x@example.com", "password": "short"}
    )
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["loc"] == ["body", "password"]
    assert "8 characters" in body["detail"]

    r = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": "abcdefgh1"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "email"]

    r = await client.post(
        "/api/v1/auth/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422


async def test_login_with_garbage_is_422_not_500(client):
    r = await client.post(
        "/api/v1/auth/login", content=b"[1,2]", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    r = await client.post("/api/v1/auth/login", data={"username": "x"})
    assert r.status_code == 422


async def test_me_requires_a_valid_token(client):
    r = await client.get("/api/v1/users/me")
    assert r.status_code == 401 and r.json()["detail"] == "Authorization header required"
    assert r.headers["www-authenticate"] == "Bearer"
    r = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["detail"] == "Invalid access token"
    r = await client.get("/api/v1/users/me", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and r.json()["detail"] == "Invalid authorization header format"
