"""Logs: JSON file sink with request ids, and no credentials in them."""

from __future__ import annotations

import json

from loguru import logger

from tests.conftest import register_and_login


async def test_json_file_log_has_request_lines_and_no_secrets(make_app, tmp_path, clean_state):
    log_file = tmp_path / "app.log"
    async with make_app(log={"file_path": str(log_file), "format": "json"}) as (_, client):
        token = await register_and_login(client, "logme@example.com", "log-pass-123")
        r = await client.get(
            "/api/v1/users/me",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-me-1"},
        )
        assert r.status_code == 200
        await logger.complete()
    logger.remove()  # flush and close the file sink (enqueue=True)
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    request_lines = [
        rec for rec in lines if rec["record"]["extra"].get("request_id") == "trace-me-1"
    ]
    assert any("GET /api/v1/users/me -> 200" in rec["record"]["message"] for rec in request_lines)
    text = log_file.read_text()
    assert token not in text and "log-pass-123" not in text


async def test_probes_stay_out_of_the_access_log_unless_they_fail(make_app, tmp_path, clean_state):
    log_file = tmp_path / "probe.log"
    async with make_app(log={"file_path": str(log_file), "format": "json"}) as (_, client):
        for _ in range(3):
            assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/health/nope")).status_code == 404
        assert (await client.get("/api/v1/events/recent")).status_code == 200
        await logger.complete()
    logger.remove()
    messages = [
        json.loads(line)["record"]["message"]
        for line in log_file.read_text().splitlines()
        if line.strip()
    ]
    assert not any("GET /health/live ->" in m for m in messages)
    assert any("GET /health/nope -> 404" in m for m in messages)
    assert any("GET /api/v1/events/recent -> 200" in m for m in messages)


async def test_every_response_carries_a_fresh_request_id_and_hardening_headers(client):
    first = await client.get("/health/live")
    second = await client.get("/health/live")
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["content-security-policy"].startswith("default-src 'none'")
    assert "Origin" in first.headers["vary"]  # CORS is on in development (localhost pages)
    assert (await client.get("/health/live", headers={"X-Request-ID": "mine-1"})).headers[
        "x-request-id"
    ] == "mine-1"
    browser = await client.get("/health/live", headers={"Origin": "http://localhost:3000"})
    assert browser.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert browser.headers["x-content-type-options"] == "nosniff"
