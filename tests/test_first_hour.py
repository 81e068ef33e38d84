"""Messages and claims a new user meets in the first hour (issue 15 item 5)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

from app.services.events import episode_record
from app.services.rag_text import notice_text
from tests.conftest import register_and_login
from tests.eventing import eventually


async def test_non_json_body_is_told_to_send_application_json(client):
    for headers, content in [
        ({"Content-Type": "text/plain"}, "hello"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "source_id=cam"),
        ({}, None),
    ]:
        r = await client.post("/api/v1/events", content=content, headers=headers)
        assert r.status_code == 415, r.text
        assert r.json()["code"] == "unsupported_media_type"
        assert "application/json" in r.json()["detail"]


async def test_login_accepts_email_or_username_in_form_and_json_and_names_the_missing_key(client):
    email = f"u-{uuid.uuid4().hex[:8]}@example.com"
    await register_and_login(client, email=email, password="s3cret-pass")
    for kwargs in (
        {"data": {"username": email, "password": "s3cret-pass"}},
        {"data": {"email": email, "password": "s3cret-pass"}},
        {"json": {"email": email, "password": "s3cret-pass"}},
        {"json": {"username": email, "password": "s3cret-pass"}},
    ):
        r = await client.post("/api/v1/auth/login", **kwargs)
        assert r.status_code == 200, (kwargs, r.text)
    r = await client.post("/api/v1/auth/login", data={"password": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "username"
    r = await client.post("/api/v1/auth/login", json={"password": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "email"


async def test_patch_with_null_title_is_422_not_409(client):
    r = await client.post("/api/v1/knowledge/docs", json={"title": "t", "content": "c"})
    doc_id = r.json()["id"]
    for field in ("title", "content", "metadata"):
        r = await client.patch(f"/api/v1/knowledge/docs/{doc_id}", json={field: None})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field
        assert "leave the field out" in r.json()["detail"]


async def test_refresh_vector_query_parameter_is_honoured(client):
    r = await client.post(
        "/api/v1/knowledge/docs?refresh_vector=false", json={"title": "t", "content": "본문"}
    )
    assert r.status_code == 201 and r.json()["indexed"] is False, r.text
    doc_id = r.json()["id"]
    r = await client.patch(
        f"/api/v1/knowledge/docs/{doc_id}?refresh_vector=true", json={"content": "새 본문"}
    )
    assert r.status_code == 200 and r.json()["indexed"] is True, r.text


async def test_head_health_answers_like_get(client):
    for path in ("/health", "/health/live", "/health/ready"):
        r = await client.head(path)
        assert r.status_code == 200 and r.content == b"", path


async def test_legacy_recent_honours_source_id(client):
    for source in ("cam-a", "cam-b"):
        r = await client.post(
            "/event/payload",
            json={"event_type": "PROBS", "source_id": source, "probs": {"normal": 1.0}},
        )
        assert r.status_code == 200, r.text

    async def only_a():
        r = await client.get("/event/recent", params={"source_id": "cam-a"})
        events = r.json()["events"]
        return events if events else None

    events = await eventually(only_a)
    assert {e["source_id"] for e in events} == {"cam-a"}


def test_episode_closed_times_are_utc_like_events():
    kst = timezone(timedelta(hours=9))
    episode = SimpleNamespace(
        id=uuid.uuid4(),
        source_id="cam",
        close_reason="end",
        decision="normal",
        decided_by="probs",
        anomaly_score=0.1,
        top_label="normal",
        started_at=datetime(2026, 11, 25, 10, 0, tzinfo=kst),
        ended_at=datetime(2026, 11, 25, 10, 1, tzinfo=kst),
    )
    record = episode_record(episode)
    assert record["started_at"] == "2026-11-25T01:00:00+00:00"
    assert record["ended_at"] == datetime(2026, 11, 25, 1, 1, tzinfo=UTC).isoformat()


def test_no_key_notice_does_not_advise_waiting_for_a_quota_reset():
    for language in ("en", "ko"):
        text = notice_text(language, configured=False, cooling={}, disabled={})
        assert "quota" not in text and "할당량" not in text
        assert "GEMINI_API_KEY" in text
    text = notice_text("en", configured=True, cooling={"gemini": 60.0}, disabled={})
    assert "quota reset" in text


# --- facts the README states about answers -------------------------------------------------


async def test_readme_health_without_redis_is_healthy_with_redis_disabled(make_app):
    async with make_app(redis={"url": ""}) as (_, client):
        r = await client.get("/health")
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["services"]["redis"]["status"] == "disabled"
        # Nothing else is down in the test setup, so the overall status is healthy.
        assert report["status"] == "healthy", report


async def test_readme_422_shapes(client):
    # Request validation: errors list with loc/field/msg/type.
    r = await client.post("/api/v1/events", json={})
    body = r.json()
    assert r.status_code == 422 and body["code"] == "validation_error"
    assert {"loc", "field", "msg", "type"} <= set(body["errors"][0])
    # Business-rule 422: same shape without errors.
    r = await client.get("/api/v1/events", params={"cursor": "not-a-cursor"})
    body = r.json()
    assert r.status_code == 422 and set(body) == {"detail", "code", "request_id"}
