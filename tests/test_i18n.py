"""Error details in Korean or English by Accept-Language (DEFAULT_LANGUAGE otherwise); codes
stay the same in every language (issue 13 item 1)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from app.core.errors import install_error_handlers
from app.core.i18n import CATALOGUE, Language, localize, negotiate

KO = {"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"}
HANGUL = re.compile("[\uac00-\ud7a3]")
SERVICE_TOKEN = "i18n-service-token-0123456789abcdef0123456789"
PROD = {"environment": "production", "security": {"access_token": SERVICE_TOKEN}}


def korean(text: str) -> bool:
    return bool(HANGUL.search(text))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Language.EN),
        ("ko", Language.KO),
        ("ko-KR,ko;q=0.9,en-US;q=0.8", Language.KO),
        ("en-US,en;q=0.9,ko;q=0.8", Language.EN),
        ("fr-FR, ko;q=0.5", Language.KO),
        ("en;q=0.1, ko;q=0.2", Language.KO),
        ("ko;q=0", Language.EN),
        ("de", Language.EN),
    ],
)
def test_accept_language_negotiation(header, expected):
    assert negotiate(header, Language.EN) is expected


def test_every_catalogue_entry_has_korean_with_the_same_parameters():
    for entry in CATALOGUE:
        assert korean(entry.ko), entry.code
        assert entry.ko.count("{") == entry.en.count("{"), entry.en


async def test_gate_401_messages_are_korean_on_request_and_english_unchanged(make_app):
    async with make_app(**PROD) as (_, client):
        cases = [
            ({}, "Authorization header required"),
            ({"Authorization": "Basic abc"}, "Invalid authorization header format"),
            ({"Authorization": "Bearer nope"}, "Invalid access token"),
        ]
        for headers, english in cases:
            r = await client.get("/api/v1/users/me", headers=headers)
            assert r.status_code == 401 and r.json()["detail"] == english
            assert r.headers["content-language"] == "en"
            r = await client.get("/api/v1/users/me", headers={**headers, **KO})
            assert r.status_code == 401 and r.json()["code"] == "unauthorized"
            assert korean(r.json()["detail"]), r.text
            assert r.headers["content-language"] == "ko"


async def test_413_is_korean_on_request(make_app):
    async with make_app(security={"max_body_bytes": 2048}) as (_, client):
        r = await client.post(
            "/api/v1/auth/register",
            content=b'{"email": "' + b"a" * 5000 + b'"}',
            headers={"Content-Type": "application/json", **KO},
        )
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        assert korean(r.json()["detail"]) and "2048" in r.json()["detail"]


async def test_429_is_korean_on_request(make_app):
    async with make_app(rate_limit={"enabled": True, "auth": "1/minute"}) as (_, client):
        body = {"email": "a@b.co", "password": "x"}
        await client.post("/api/v1/auth/login", json=body, headers=KO)
        r = await client.post("/api/v1/auth/login", json=body, headers=KO)
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert korean(r.json()["detail"]) and r.headers["retry-after"] in r.json()["detail"]


async def test_422_validation_in_korean_names_field_problem_and_what_is_right(client):
    r = await client.post(
        "/api/v1/events",
        json={"source_id": "", "event_type": "JUMP", "timestamp": "2026-11-25T10:00:00"},
        headers=KO,
    )
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    body = r.json()
    assert korean(body["detail"])
    by_field = {e["field"]: e for e in body["errors"]}
    assert set(by_field) >= {"source_id", "event_type", "timestamp"}
    assert "1자 이상" in by_field["source_id"]["msg"]
    assert "START" in by_field["event_type"]["msg"]  # the allowed values
    assert "시간대" in by_field["timestamp"]["msg"]
    assert all(korean(e["msg"]) for e in body["errors"])
    # Same request in English: same codes and fields, English words.
    r = await client.post(
        "/api/v1/events",
        json={"source_id": "", "event_type": "JUMP", "timestamp": "2026-11-25T10:00:00"},
    )
    assert [e["type"] for e in r.json()["errors"]] == [e["type"] for e in body["errors"]]
    assert not korean(r.json()["detail"])


async def test_app_errors_404_and_custom_validation_are_korean(client):
    r = await client.get(f"/api/v1/knowledge/docs/{uuid.uuid4()}", headers=KO)
    assert r.status_code == 404 and r.json()["code"] == "document_not_found"
    assert korean(r.json()["detail"])
    r = await client.post(
        "/api/v1/events",
        json={"source_id": "c", "event_type": "END", "timestamp": "0001-01-01T00:00:00+14:00"},
        headers=KO,
    )
    assert r.status_code == 422 and "9999-12-30" in r.json()["detail"]
    assert korean(r.json()["errors"][0]["msg"])
    r = await client.post("/event/payload", json={"event_type": "END", "ts": 1e20}, headers=KO)
    assert r.status_code == 422 and korean(r.json()["detail"])
    r = await client.get("/nowhere", headers=KO)
    assert r.status_code == 404 and korean(r.json()["detail"])


async def test_default_language_setting_applies_without_a_header(make_app):
    async with make_app(default_language="ko") as (_, client):
        r = await client.get(f"/api/v1/knowledge/docs/{uuid.uuid4()}")
        assert r.status_code == 404 and korean(r.json()["detail"])
        r = await client.get(
            f"/api/v1/knowledge/docs/{uuid.uuid4()}", headers={"Accept-Language": "en"}
        )
        assert r.json()["detail"].startswith("No knowledge document")


async def test_503_and_500_are_korean_on_request():
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/db")
    async def db() -> None:
        raise sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/db", headers=KO)
        assert r.status_code == 503 and r.json()["code"] == "database_unavailable"
        assert korean(r.json()["detail"])
        r = await client.get("/boom", headers=KO)
        assert r.status_code == 500 and korean(r.json()["detail"])


def test_unknown_messages_keep_the_english_specifics_after_a_korean_sentence():
    text = localize("not_found", "No widget 7", Language.KO)
    assert korean(text) and "No widget 7" in text
