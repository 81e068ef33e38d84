"""Sign in with Google (issue 13 item 2) against a local JWKS server on 127.0.0.1 that signs its
own RS256 ID tokens the way Google does."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.test_authz import PROD, SERVICE_TOKEN

CLIENT_ID = "sentinel-test.apps.googleusercontent.com"


class FakeGoogleKeys:
    """Serves a JWK Set at /oauth2/v3/certs and signs ID tokens with its private keys."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.published: set[str] = set()
        self.fetches = 0
        self.rotate()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.fetches += 1
                keys = []
                for kid in sorted(fake.published):
                    jwk = json.loads(RSAAlgorithm.to_jwk(fake.keys[kid].public_key()))
                    keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
                body = json.dumps({"keys": keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/oauth2/v3/certs"

    def rotate(self, publish: bool = True) -> str:
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.add(kid)
        return kid

    def token(self, kid: str | None = None, **claims: Any) -> str:
        kid = kid or sorted(self.published)[0]
        now = int(time.time())
        body = {
            "iss": "https://accounts.google.com",
            "aud": CLIENT_ID,
            "sub": "1098765432101234567890",
            "email": "g.user@example.com",
            "email_verified": True,
            "name": "G User",
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def google() -> Iterator[FakeGoogleKeys]:
    fake = FakeGoogleKeys()
    yield fake
    fake.stop()


def _settings(google: FakeGoogleKeys, registration: str = "open") -> dict[str, Any]:
    return {
        **PROD,
        "security": {
            "access_token": SERVICE_TOKEN,
            "registration": registration,
            "google_client_id": CLIENT_ID,
            "google_jwks_url": google.url,
            "google_timeout_secs": 3,
            "google_jwks_refresh_cooldown_secs": 0,
        },
    }


async def _sign_in(client, token: str):
    return await client.post("/api/v1/auth/google", json={"id_token": token})


async def test_valid_token_creates_then_signs_in_the_same_account(make_app, google, clean_state):
    async with make_app(**_settings(google)) as (_, client):
        r = await _sign_in(client, google.token())  # no bearer token needed in production
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.json()["email"] == "g.user@example.com" and me.json()["role"] == "viewer"
        again = await _sign_in(client, google.token())
        me2 = await client.get(
            "/api/v1/users/me",
            headers={"Authorization": f"Bearer {again.json()['access_token']}"},
        )
        assert me2.json()["id"] == me.json()["id"]
        assert google.fetches == 1  # the key set is cached


@pytest.mark.parametrize(
    ("case", "claims", "code"),
    [
        (
            "expired",
            {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},
            "invalid_google_token",
        ),
        (
            "wrong audience",
            {"aud": "someone-else.apps.googleusercontent.com"},
            "invalid_google_token",
        ),
        ("wrong issuer", {"iss": "https://evil.example.com"}, "invalid_google_token"),
        ("unverified e-mail", {"email_verified": False}, "google_email_unverified"),
        ("no e-mail", {"email": None}, "google_email_unverified"),
    ],
)
async def test_bad_claims_are_refused(make_app, google, clean_state, case, claims, code):
    async with make_app(**_settings(google)) as (_, client):
        r = await _sign_in(client, google.token(**claims))
        assert r.status_code == 401, case
        assert r.json()["code"] == code, case


async def test_unknown_key_and_tampered_signature_are_refused(make_app, google, clean_state):
    async with make_app(**_settings(google)) as (_, client):
        unpublished = google.rotate(publish=False)
        r = await _sign_in(client, google.token(kid=unpublished))
        assert r.status_code == 401 and r.json()["code"] == "invalid_google_token"
        header, _payload, signature = google.token().split(".")
        forged = jwt.utils.base64url_encode(
            json.dumps(
                {
                    **jwt.decode(google.token(), options={"verify_signature": False}),
                    "email": "admin@example.com",
                }
            ).encode()
        ).decode()
        r = await _sign_in(client, f"{header}.{forged}.{signature}")
        assert r.status_code == 401 and r.json()["code"] == "invalid_google_token"
        r = await _sign_in(client, "not-a-jwt")
        assert r.status_code == 401


async def test_rotated_key_is_fetched_on_an_unknown_kid(make_app, google, clean_state):
    async with make_app(**_settings(google)) as (_, client):
        assert (await _sign_in(client, google.token())).status_code == 200
        fetches = google.fetches
        new_kid = google.rotate()
        r = await _sign_in(client, google.token(kid=new_kid))
        assert r.status_code == 200, r.text
        assert google.fetches == fetches + 1


async def test_closed_registration_refuses_new_google_users_but_links_existing(
    make_app, google, clean_state
):
    async with make_app(**_settings(google, registration="closed")) as (app, client):
        r = await _sign_in(client, google.token(email="new.person@example.com"))
        assert r.status_code == 403 and r.json()["code"] == "registration_closed"
        await app.state.container.user_service().create_admin("Boss@Example.com", "boss-pass-123")
        # The e-mail alone does not link (issue 29 finding 11): the password proves the owner.
        r = await _sign_in(client, google.token(email="boss@example.com"))
        assert r.status_code == 409 and r.json()["code"] == "google_link_refused"
        r = await client.post(
            "/api/v1/auth/google",
            json={"id_token": google.token(email="boss@example.com"), "password": "boss-pass-123"},
        )
        assert r.status_code == 200, r.text
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.json()["role"] == "admin"


async def test_google_sign_in_without_a_client_id_is_a_404_not_a_server_error(
    make_app, clean_state
):
    async with make_app(**PROD) as (_, client):
        r = await _sign_in(client, "x.y.z")
        assert r.status_code == 404 and "GOOGLE_CLIENT_ID" in r.json()["detail"]
        assert r.json()["code"] == "google_not_configured"
