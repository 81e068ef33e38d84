"""/metrics: request counts by route template, latency histograms, pool and Redis gauges, gate."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import register_and_login


def sample_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in an exposition text, or None when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


async def scrape(client, headers=None) -> str:
    r = await client.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_requests_are_counted_by_route_template_method_and_status(client):
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get("/health/live")).status_code == 200
    assert (await client.get("/api/v1/users/me")).status_code == 401
    assert (await client.get("/api/v1/no-such-thing/123")).status_code == 404
    after = await scrape(client)

    def delta(**labels: str) -> float:
        name = "sentinel_http_requests_total"
        return (sample_value(after, name, **labels) or 0) - (
            sample_value(before, name, **labels) or 0
        )

    assert delta(method="GET", route="/health/live", status="200") == 3
    assert delta(method="GET", route="/api/v1/users/me", status="401") == 1
    # Unknown paths share one label so scanners cannot create series without bound.
    assert delta(method="GET", route="<unmatched>", status="404") == 1
    assert (
        sample_value(after, "sentinel_http_requests_total", route="/api/v1/no-such-thing/123")
        is None
    )
    count = sample_value(
        after, "sentinel_http_request_duration_seconds_count", method="GET", route="/health/live"
    )
    assert count is not None and count >= 3


async def test_path_parameters_are_labelled_by_template_not_value(make_app):
    async with make_app() as (app, client):
        from fastapi import APIRouter

        router = APIRouter()

        @router.get("/things/{thing_id}")
        async def thing(thing_id: int) -> dict:
            return {"id": thing_id}

        app.include_router(router)
        for i in range(3):
            assert (await client.get(f"/things/{i}")).status_code == 200
        text = await scrape(client)
        assert (
            sample_value(text, "sentinel_http_requests_total", route="/things/{thing_id}") or 0
        ) >= 3
        assert sample_value(text, "sentinel_http_requests_total", route="/things/1") is None


async def test_pool_and_redis_gauges_are_exposed(client, redis_url):
    await register_and_login(client)
    text = await scrape(client)
    assert sample_value(text, "sentinel_db_pool_in_use") is not None
    assert sample_value(text, "sentinel_redis_up") == (1.0 if redis_url else 0.0)
    # The shared families of the other layers are declared even before they see traffic.
    for family in (
        "sentinel_inference_duration_seconds",
        "sentinel_events_ingested_total",
        "sentinel_alerts_total",
        "sentinel_llm_calls_total",
    ):
        assert f"# TYPE {family}" in text


async def test_metrics_need_a_token_in_production_unless_public(make_app):
    prod = {
        "environment": "production",
        "security": {"access_token": "svc-token-for-metrics-test-0123456789"},
    }
    async with make_app(**prod) as (_, client):
        r = await client.get("/metrics")
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        r = await client.get(
            "/metrics", headers={"Authorization": "Bearer svc-token-for-metrics-test-0123456789"}
        )
        assert r.status_code == 200 and "sentinel_http_requests_total" in r.text
    async with make_app(**prod, metrics_public=True) as (_, client):
        assert (await client.get("/metrics")).status_code == 200
        # Public metrics do not open anything else.
        assert (await client.get("/api/v1/users/me")).status_code == 401


async def test_domain_families_count_after_a_little_traffic(client, app):
    """Each domain's family gets samples from real traffic (checked for the routes present)."""
    paths = set(app.openapi()["paths"])
    checked = []
    if "/api/v1/events" in paths:
        from datetime import UTC, datetime

        for kind in ("START", "PROBS", "END"):
            r = await client.post(
                "/api/v1/events",
                json={
                    "source_id": "metrics-cam",
                    "event_type": kind,
                    "timestamp": datetime.now(UTC).isoformat(),
                    "probs": {"normal": 0.9, "fall": 0.1},
                },
            )
            assert r.status_code == 202, r.text
        text = await scrape(client)
        assert (sample_value(text, "sentinel_events_ingested_total", event_type="PROBS") or 0) >= 1
        checked.append("events")
    if "/api/v1/behavior/analyze" in paths:
        from tests.test_faults import analyze_body

        r = await client.post("/api/v1/behavior/analyze", json=await analyze_body(client))
        assert r.status_code == 200, r.text
        text = await scrape(client)
        assert (sample_value(text, "sentinel_inference_duration_seconds_count") or 0) >= 1
        assert (sample_value(text, "sentinel_inference_batch_size_count") or 0) >= 1
        checked.append("analyze")
    text = await scrape(client)
    assert (sample_value(text, "sentinel_http_requests_total", route="/metrics") or 0) >= 1


async def test_source_gauges_follow_the_sources_a_scrape_reads(client):
    event = {
        "source_id": "cam-gauge-1",
        "event_type": "HEARTBEAT",
        "timestamp": "2026-11-25T01:00:00Z",
    }
    assert (await client.post("/api/v1/events", json=event)).status_code == 202
    text = await scrape(client)
    seen = sample_value(
        text, "sentinel_source_last_seen_timestamp_seconds", source_id="cam-gauge-1"
    )
    assert seen is not None and seen > 0
    assert (sample_value(text, "sentinel_sources", state="online") or 0) >= 1
