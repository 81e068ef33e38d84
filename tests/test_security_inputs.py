"""Security round 3, the remaining input holes (issue 29 findings 4, 6, 7, 8 and 12), each
attack replayed against a production-mode app: wide frames, forged log lines, deep JSON and
disconnects, invisible characters in alert labels, and concurrent knowledge edits."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from loguru import logger
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from app.clients.notifiers.base import AlertMessage
from app.clients.notifiers.email import EmailNotifier
from app.core.security import Role
from app.core.settings import AlertSettings
from app.models.event import Episode
from app.services.alert_text import safe_label
from tests.eventing import ABNORMAL, event
from tests.test_alert_channels import (  # noqa: F401 (fixtures)
    channel_settings,
    hooks_server,
    kakao_server,
    servers,
    smtp_server,
    wait_alerts,
)

SERVICE_TOKEN = "service-token-for-the-input-tests-0123456789abcdef"
SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
ENCRYPTION_KEY = "input-tests-data-encryption-key-0123456789-abcdefghijklmnop"
PROD: dict[str, Any] = {
    "environment": "production",
    "security": {"access_token": SERVICE_TOKEN, "registration": "open"},
}


async def _account(app, client, role: str) -> dict[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": "pass-1234"})
    assert r.status_code == 201, r.text
    if role != "viewer":
        await app.state.container.user_service().set_role(email, Role(role))
    r = await client.post("/api/v1/auth/login", data={"username": email, "password": "pass-1234"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _post_event(client, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    r = await client.post("/api/v1/events", json=body, headers=SERVICE)
    assert r.status_code == status, r.text
    return r.json()


# --- finding 4: wide frames ------------------------------------------------------------------


async def test_twenty_probs_with_very_wide_frames_are_refused_422(make_app, clean_state):
    async with make_app(**PROD) as (_, client):
        await _post_event(client, event("START", "cam-wide"))
        wide = [[0.0] * 100_000]
        for i in range(20):
            body = await _post_event(
                client, event("PROBS", "cam-wide", seconds=i + 1, sequence=wide), 422
            )
            assert body["code"] == "validation_error"
            assert "EVENT_SEQUENCE_MAX_FEATURES" in body["detail"]
            assert "100000 features; at most 64" in body["detail"]
        # The batch route and an END carrying frames are held to the same width.
        r = await client.post(
            "/api/v1/events/batch",
            json={"events": [event("PROBS", "cam-wide", seconds=30, sequence=[[0.0] * 65])]},
            headers=SERVICE,
        )
        assert r.status_code == 422 and "events.0: sequence frames have 65" in r.json()["detail"]
        await _post_event(client, event("END", "cam-wide", seconds=31, sequence=[[0.0] * 65]), 422)
        # 64 features is fine, and the episode still works.
        await _post_event(client, event("PROBS", "cam-wide", seconds=32, sequence=[[0.5] * 64]))
        r = await client.get("/api/v1/episodes", params={"source_id": "cam-wide"}, headers=SERVICE)
        [episode] = r.json()["items"]
        assert episode["sequence_length"] == 1 and episode["status"] == "open"


async def test_analyze_refuses_frames_wider_than_the_model_reads(client):
    r = await client.post("/api/v1/behavior/analyze", json={"sequence": [[0.0] * 100_000]})
    assert r.status_code in (422, 503), r.text  # 503 only when no model is installed
    if r.status_code == 422:
        assert "features" in r.json()["detail"]


def _frame_selects(statements: list[str]) -> list[str]:
    """Statements that read the episodes' or events' frames column itself (not a function of
    it, such as its array length)."""
    return [s for s in statements if re.search(r"(?<![(])\b(episodes|events)\.sequence\b", s)]


async def test_episode_listing_never_reads_stored_frames_and_frames_are_capped(
    make_app, clean_state
):
    cap = 64 * 1024
    async with make_app(**PROD, events={"episode_sequence_max_bytes": cap}) as (app, client):
        await _post_event(client, event("START", "cam-frames"))
        frames = [[round(0.123456789 + i * 1e-6, 9)] * 64 for i in range(50)]
        for i in range(20):  # 1,000 max-width frames: ~700 KB, far past the cap
            await _post_event(client, event("PROBS", "cam-frames", seconds=i + 1, sequence=frames))
        database = app.state.container.database()
        async with database.sessions() as session:
            stored = (await session.execute(select(Episode.sequence))).scalar_one()
        assert 0 < len(json.dumps(stored, separators=(",", ":"))) <= cap
        kept = len(stored)

        statements: list[str] = []

        def record(conn, cursor, statement, params, context, executemany) -> None:
            statements.append(statement)

        engine = database.engine.sync_engine
        sa_event.listen(engine, "before_cursor_execute", record)
        try:
            listed = await client.get("/api/v1/episodes", headers=SERVICE)
            health = await client.get("/health/live")
            [item] = listed.json()["items"]
            detail = await client.get(f"/api/v1/episodes/{item['id']}", headers=SERVICE)
            events = await client.get(
                "/api/v1/events", params={"source_id": "cam-frames"}, headers=SERVICE
            )
        finally:
            sa_event.remove(engine, "before_cursor_execute", record)
        assert listed.status_code == 200 and health.status_code == 200
        assert item["sequence_length"] == kept and "sequence" not in item
        assert detail.json()["sequence_length"] == kept
        assert {e["sequence_length"] for e in events.json()["items"]} <= {50, None}
        assert any("episodes" in s for s in statements)
        assert _frame_selects(statements) == [], _frame_selects(statements)

        # Frames past the cap were dropped, not the episode: it still closes with a decision.
        await _post_event(client, event("END", "cam-frames", seconds=30, probs=ABNORMAL))
        r = await client.get(f"/api/v1/episodes/{item['id']}", headers=SERVICE)
        assert r.json()["status"] == "closed" and r.json()["decision"] is not None


async def test_frames_stored_past_the_cap_by_an_older_version_are_not_read_back(
    make_app, clean_state
):
    async with make_app(**PROD, events={"episode_sequence_max_bytes": 16 * 1024}) as (app, client):
        await _post_event(client, event("START", "cam-legacy"))
        database = app.state.container.database()
        huge = [[0.25] * 1000] * 300  # ~1.5 MB of frames, as the attack left them
        async with database.sessions.begin() as session:
            await session.execute(update(Episode).values(sequence=huge))
        # Each later event of the source reads the open episode: not those frames.
        await _post_event(client, event("PROBS", "cam-legacy", seconds=1, probs=ABNORMAL))
        await _post_event(client, event("PROBS", "cam-legacy", seconds=2, sequence=[[0.5] * 6]))
        async with database.sessions() as session:
            stored = (await session.execute(select(Episode.sequence))).scalar_one()
        assert stored == [[0.5] * 6]  # the new frames replaced the oversized ones
        await _post_event(client, event("END", "cam-legacy", seconds=3, probs=ABNORMAL))
        [item] = (await client.get("/api/v1/episodes", headers=SERVICE)).json()["items"]
        assert item["status"] == "closed" and item["event_count"] == 4


# --- finding 6: log forging ------------------------------------------------------------------

FORGED = "2026-12-07 00:00:00.000 | WARNING  | - | app.services.users:1 - admin password reset"


async def test_a_question_with_a_fake_log_line_stays_on_one_line(make_app, tmp_path, clean_state):
    log_file = tmp_path / "forge.log"
    async with make_app(**PROD, log={"file_path": str(log_file), "format": "console"}) as (
        app,
        client,
    ):
        viewer = await _account(app, client, "viewer")
        question = f"where is the exit?\n{FORGED}\r\n{FORGED}\u2028{FORGED}"
        r = await client.post("/api/v1/rag/ask", json={"question": question}, headers=viewer)
        assert r.status_code < 500, r.text
        # Any other user text in a message gets the same treatment (titles, names, labels).
        logger.info("document {} created", f"title\n{FORGED}")
        await logger.complete()
    logger.remove()
    lines = log_file.read_text().splitlines()
    assert not [line for line in lines if line.startswith("2026-12-07 00:00:00.000")]
    [asked] = [line for line in lines if "ask (top_k=" in line]
    assert "where is the exit?\\x0a2026-12-07" in asked and "\\u2028" in asked
    assert any("title\\x0a2026-12-07" in line for line in lines)


# --- finding 7: deep JSON and disconnects ----------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/auth/login", {}),
        ("/api/v1/auth/register", {}),
        ("/api/v1/events", SERVICE),
        ("/api/v1/events/batch", SERVICE),
    ],
)
async def test_deeply_nested_json_gets_422_on_every_route(make_app, clean_state, path, headers):
    async with make_app(**PROD) as (_, client):
        # Without a Content-Type FastAPI parses a body as JSON too (login then reads no form).
        content_types = ["application/json"] + ([] if path.endswith("/login") else [None])
        for content_type in content_types:
            sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
            r = await client.post(path, content=DEEP, headers=sent)
            assert r.status_code == 422, (path, content_type, r.status_code, r.text[:300])
            body = r.json()
            assert body["code"] == "json_too_deep" and "REQUEST_JSON_MAX_DEPTH" in body["detail"]
            assert body["request_id"]
        korean = {**headers, "Accept-Language": "ko", "Content-Type": "application/json"}
        r = await client.post(path, content=DEEP, headers=korean)
        assert "REQUEST_JSON_MAX_DEPTH" in r.json()["detail"] and "JSON 본문" in r.json()["detail"]
        # Nesting under the limit still reaches the route (which judges the content itself).
        shallow = json.dumps({"email": "x@example.com", "password": [[["deep enough"]]]})
        r = await client.post(
            path, content=shallow, headers={**headers, "Content-Type": "application/json"}
        )
        assert r.status_code != 500 and r.json()["code"] != "json_too_deep"


async def _disconnect_mid_body(app, path: str, content_type: bytes, headers=()) -> list[dict]:
    """Call the app as a server would, with a client that goes away after the first chunk."""
    messages = iter(
        [
            {
                "type": "http.request",
                "body": b'{"email": "a@example.com", "pass',
                "more_body": True,
            },
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict:
        try:
            return next(messages)
        except StopIteration:
            await asyncio.sleep(3600)  # a real server never answers again after a disconnect
            raise

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"sentinel.test"),
            (b"content-type", content_type),
            (b"content-length", b"200"),
            *headers,
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("sentinel.test", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


@pytest.mark.parametrize(
    ("path", "content_type", "headers"),
    [
        ("/api/v1/auth/login", b"application/json", ()),
        ("/api/v1/auth/login", b"application/x-www-form-urlencoded", ()),
        (
            "/api/v1/events",
            b"application/json",
            ((b"authorization", SERVICE["Authorization"].encode()),),
        ),
    ],
)
async def test_client_disconnect_mid_body_is_one_499_line_not_a_500(
    make_app, clean_state, path, content_type, headers
):
    lines: list[str] = []
    async with make_app(**PROD) as (app, _):
        sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
        try:
            sent = await _disconnect_mid_body(app, path, content_type, headers)
        finally:
            logger.remove(sink)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert 500 not in statuses and statuses in ([], [499])
    assert [line for line in lines if "client disconnected (499)" in line], lines
    assert not [line for line in lines if "Traceback" in line or "unhandled error" in line]
    assert len([line for line in lines if path in line]) == 1, lines


# --- finding 8: alert labels -----------------------------------------------------------------


@pytest.mark.parametrize(
    "label",
    [
        "fall\u2028Bcc: x",  # line separator
        "fa\u200bll",  # zero-width space
        "\u202efall",  # bidi override
        "fall\r\nSubject: hi",
        "\u2029",
        "x" * 65,
    ],
)
async def test_probs_labels_with_invisible_or_line_breaking_characters_get_422(
    make_app, clean_state, label
):
    async with make_app(**PROD) as (_, client):
        body = await _post_event(
            client, event("END", "cam-label", probs={"normal": 0.1, label: 0.9}), 422
        )
        assert body["code"] == "validation_error" and "probs" in body["detail"]


async def test_email_alert_with_an_odd_but_allowed_label_is_delivered(
    make_app,
    servers,  # noqa: F811
):
    _kakao, _hooks, smtp = servers
    label = "낙상 <b>Fall</b> — 🙂 \"quoted\" 'x' : ; ="
    probs = {"normal": 0.1, label: 0.85}
    prod = {**PROD, "security": {**PROD["security"], "data_encryption_key": ENCRYPTION_KEY}}
    async with make_app(**prod, alerts=channel_settings(servers, channels="email,slack")) as (
        _,
        client,
    ):
        client.headers.update(SERVICE)
        await _post_event(client, event("START", "cam-odd"))
        await _post_event(client, event("PROBS", "cam-odd", seconds=1, probs=probs))
        await _post_event(client, event("END", "cam-odd", seconds=2, probs=probs))
        [alert] = await wait_alerts(client, "sent", 1)
    assert alert["label"] == label
    assert {d["channel"]: d["status"] for d in alert["deliveries"]}["email"] == "sent"
    [mail] = smtp.messages
    assert "\n" not in mail["Subject"] and "낙상" in mail["Subject"]
    assert label in mail.get_content()


def test_email_subject_never_carries_line_breaks_or_invisible_characters():
    # A label stored before ingest refused such characters still reaches a sendable e-mail.
    assert safe_label("fa\u200bll\u2028Bcc: evil@example.com\u202e") == "fallBcc: evil@example.com"
    settings = AlertSettings(
        smtp_host="127.0.0.1", email_from="sentinel@example.com", email_to="ops@example.com"
    )
    message = AlertMessage(
        alert_id=uuid.uuid4(),
        kind="abnormal_episode",
        stage="notify",
        source_id="cam-1",
        occurred_at=datetime.now(UTC),
        label="x",
        score=0.9,
        link="",
        subject="[Sentinel] fall\u2028Bcc: evil@example.com\r\nX-Evil: 1\u200b\u202e",
        short_text="x",
        text="body",
    )
    mail = EmailNotifier(settings).build(message)
    raw = mail.as_bytes().decode()
    assert "\nBcc:" not in raw and "\nX-Evil" not in raw
    assert mail["Subject"] == "[Sentinel] fall Bcc: evil@example.com X-Evil: 1"


# --- finding 12: one document's writes are serialised -----------------------------------------


async def test_twenty_concurrent_patches_leave_no_orphan_vectors(make_app, clean_state):
    async with make_app(**PROD) as (app, client):
        container = app.state.container
        await container.vector_store().clear()
        admin = await _account(app, client, "admin")
        r = await client.post(
            "/api/v1/knowledge/docs",
            json={"title": "점검 절차", "content": "# 점검\n\n처음 내용."},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        doc = r.json()["id"]

        async def patch(i: int) -> int:
            content = "\n\n".join(f"# 절 {i}-{k}\n\n갱신 {i}번의 {k}번째 문단." for k in range(3))
            response = await client.patch(
                f"/api/v1/knowledge/docs/{doc}", json={"content": content}, headers=admin
            )
            return response.status_code

        statuses = await asyncio.gather(*(patch(i) for i in range(20)))
        assert all(s == 200 for s in statuses), statuses
        report = await container.knowledge_service().check()
        assert report.orphans == [] and report.missing == [], report
        assert report.consistent and report.chunks == report.vectors == 3
