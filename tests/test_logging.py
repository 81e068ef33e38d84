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
