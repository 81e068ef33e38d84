"""Inputs schemathesis found accepted although the schema forbids them (kept as regressions)."""

from __future__ import annotations


async def test_booleans_are_not_feature_values_or_probabilities(client):
    body = {
        "source_id": "fuzz-cam",
        "event_type": "PROBS",
        "timestamp": "2026-11-25T01:02:03+09:00",
    }
    r = await client.post("/api/v1/events", json={**body, "sequence": [[False, 0.5]]})
    assert r.status_code == 422, r.text
    r = await client.post("/api/v1/events", json={**body, "probs": {"fall": True}})
    assert r.status_code == 422, r.text
    r = await client.post("/api/v1/events", json={**body, "probs": {"fall": 1, "normal": 0}})
    assert r.status_code == 202, r.text


async def test_event_time_filters_take_iso_datetimes_not_bare_numbers(client):
    for value in ("0.5", "1700000000"):
        r = await client.get("/api/v1/events", params={"until": value})
        assert r.status_code == 422, r.text
        assert "ISO 8601" in r.json()["detail"]
    r = await client.get("/api/v1/events", params={"since": "2026-11-25T10:00:00Z"})
    assert r.status_code == 200, r.text


async def test_event_timestamp_is_an_iso_datetime_not_an_epoch_number(client):
    body = {"source_id": "fuzz-cam", "event_type": "HEARTBEAT", "timestamp": 1764032523}
    r = await client.post("/api/v1/events", json=body)
    assert r.status_code == 422, r.text
    assert "ISO 8601" in r.json()["detail"]
    # The legacy agent path keeps accepting epoch seconds.
    r = await client.post("/event/payload", json={"event_type": "HEARTBEAT", "ts": 1764032523})
    assert r.status_code < 300, r.text
