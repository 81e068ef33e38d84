"""The behaviour analyzer over HTTP, with the shipped BasicMotions checkpoint."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from app.core.errors import Unavailable, ValidationFailed
from app.core.metrics import INFERENCE_BATCH_SIZE
from app.schemas.behavior import AnalysisOut, BatchAnalysisOut, examples

RUNNING = examples()["running"]["sequence"]
STANDING = examples()["standing"]["sequence"]
ANALYZE = "/api/v1/behavior/analyze"


def _batch_count() -> float:
    for metric in INFERENCE_BATCH_SIZE.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return sample.value
    return 0.0


async def test_running_sequence_is_flagged_and_standing_is_not(client):
    r = await client.post(ANALYZE, json={"sequence": RUNNING, "source_id": "cam-01"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["is_anomaly"] is True and body["top_label"] == "running"
    assert body["source_id"] == "cam-01"
    assert body["labels"] == ["badminton", "running", "standing", "walking"]
    assert body["normal_score"] + body["anomaly_score"] == pytest.approx(1.0)
    assert sum(body["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert body["anomaly_score"] >= body["threshold"] and body["inference_ms"] > 0
    # Encoded by hand on the hot path: exactly the documented fields, in order, and valid.
    assert list(body) == list(AnalysisOut.model_fields)
    assert AnalysisOut.model_validate(body).model_dump(mode="json") == body

    r = await client.post(ANALYZE, json={"sequence": STANDING})
    body = r.json()
    assert r.status_code == 200
    assert body["is_anomaly"] is False and body["top_label"] == "standing"


async def test_batch_form_answers_in_order(client):
    r = await client.post(ANALYZE, json={"sequences": [STANDING, RUNNING, STANDING[:40]]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["top_label"] for x in results[:2]] == ["standing", "running"]
    assert [x["is_anomaly"] for x in results] == [False, True, False]
    assert BatchAnalysisOut.model_validate(r.json()).model_dump(mode="json") == r.json()


async def test_concurrent_requests_are_coalesced_and_match_one_by_one(make_app):
    # A longer wait makes coalescing certain even on a loaded CI machine.
    async with make_app(model={"batch_max_wait_ms": 50}) as (_, client):
        seqs = [RUNNING, STANDING, RUNNING[:30], STANDING[10:90], RUNNING[::2], STANDING[:5]] * 3
        one_by_one = []
        for seq in seqs:
            r = await client.post(ANALYZE, json={"sequence": seq})
            one_by_one.append(r.json()["scores"])
        batches_before = _batch_count()
        responses = await asyncio.gather(
            *(client.post(ANALYZE, json={"sequence": seq}) for seq in seqs)
        )
        batches = _batch_count() - batches_before
    assert batches < len(seqs)  # forward passes were shared
    for r, expected in zip(responses, one_by_one, strict=True):
        assert r.status_code == 200
        for label, p in r.json()["scores"].items():
            assert p == pytest.approx(expected[label], abs=1e-5)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"sequence": [[0.1] * 5] * 10}, "frame 0 has 5 features; the model expects 6"),
        ({"sequence": []}, "is empty"),
        ({"sequence": [[0.1] * 6] * 1001}, "maximum is 1000"),
        ({"sequence": [[0.1] * 6, [0.1] * 6, [0.1] * 7]}, "frame 2 has 7 features"),
        ({"sequence": [[0.1] * 6, ["a", 1, 2, 3, 4, 5]]}, "sequence.1.0"),
        ({"sequence": [[0.1] * 6, [True, 1, 2, 3, 4, 5]]}, "sequence.1.0"),
        ({"sequence": [[1e39] * 6]}, "frame 0 feature 0 is too large"),
        ({"sequence": [[10**400, 1, 2, 3, 4, 5]]}, "sequence.0.0"),
        ({"sequences": [[[0.1] * 6], [[0.1] * 4]]}, "sequences[1] frame 0 has 4 features"),
        ({"sequences": []}, "'sequences' is empty"),
        ({}, "exactly one of 'sequence'"),
        ({"sequence": [[0.1] * 6], "sequences": [[[0.1] * 6]]}, "exactly one of 'sequence'"),
        ({"sequence": "walking"}, "sequence"),
    ],
)
async def test_bad_sequences_get_422_with_a_helpful_message(client, payload, fragment):
    r = await client.post(ANALYZE, json=payload)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error"
    assert fragment in body["detail"], body["detail"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_get_422(client, literal):
    raw = f'{{"sequence": [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.1, 0.2, {literal}, 0.4, 0.5, 0.6]]}}'
    r = await client.post(ANALYZE, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "frame 1 feature 2" in r.json()["detail"] and "finite" in r.json()["detail"]


async def test_model_endpoint_shows_metadata_and_metrics_without_weights(client):
    r = await client.get("/api/v1/behavior/model")
    assert r.status_code == 200
    body = r.json()
    assert body["feature_dim"] == 6 and body["normal_labels"] == ["standing", "walking"]
    assert body["metrics"]["test"]["accuracy"] >= 0.95
    assert body["data_fingerprint"].startswith("sha256:")
    assert "state_dicts" not in body and "weights" not in r.text


async def test_health_reports_the_loaded_model(client):
    r = await client.get("/health")
    model = r.json()["services"]["model"]
    assert model["status"] == "healthy" and model["loaded"] is True
    assert model["feature_dim"] == 6 and "running" in model["labels"] and model["version"]


async def test_legacy_path_serves_the_same_handler_and_is_hidden(client):
    r = await client.post("/behavior/analyze", json={"sequence": RUNNING})
    assert r.status_code == 200 and r.json()["top_label"] == "running"
    schema = (await client.get("/openapi.json")).json()
    assert "/behavior/analyze" not in schema["paths"]
    examples_ = schema["paths"][ANALYZE]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    # The Swagger example is a real sequence that the model flags.
    r = await client.post(ANALYZE, json=examples_["running"]["value"])
    assert r.json()["is_anomaly"] is True


async def test_anomaly_threshold_setting_overrides_the_checkpoint(make_app):
    async with make_app(model={"anomaly_threshold": 1.0}) as (app, client):
        r = await client.post(ANALYZE, json={"sequence": RUNNING})
        assert r.json()["threshold"] == 1.0 and r.json()["is_anomaly"] is False
        assert app.state.container.behavior_service().threshold == 1.0


async def test_service_interface_for_other_domains(app):
    service = app.state.container.behavior_service()
    assert service.normal_labels == frozenset({"standing", "walking"})
    one = await service.analyze(RUNNING)
    many = await service.analyze_many([STANDING, RUNNING])
    assert one.is_anomaly and one.top_label == "running" and one.model_version
    assert [r.top_label for r in many] == ["standing", "running"]
    assert many[1].scores == pytest.approx(one.scores, abs=1e-5)
    with pytest.raises(ValidationFailed, match="expects 6"):
        await service.analyze([[1.0, 2.0]])


@pytest.mark.parametrize("content", [None, b"definitely not a checkpoint"])
async def test_missing_or_corrupt_checkpoint_degrades_health_and_analyze_is_503(
    make_app, tmp_path: Path, content
):
    path = tmp_path / "behavior.pt"
    if content is not None:
        path.write_bytes(content)
    async with make_app(model={"checkpoint_path": str(path)}) as (app, client):
        health = (await client.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["services"]["model"]["status"] == "unavailable"
        assert health["services"]["model"]["loaded"] is False

        r = await client.post(ANALYZE, json={"sequence": RUNNING})
        assert r.status_code == 503
        assert r.json()["code"] == "model_unavailable"
        assert "sentinel train-behavior" in r.json()["detail"]
        assert (await client.get("/api/v1/behavior/model")).status_code == 503

        service = app.state.container.behavior_service()
        assert service.normal_labels == frozenset({"standing", "walking"})
        assert service.threshold == 0.5
        with pytest.raises(Unavailable):
            await service.analyze_many([RUNNING])


async def test_queued_requests_finish_when_the_app_shuts_down(make_app):
    async with make_app(model={"batch_max_wait_ms": 30}) as (app, _client):
        service = app.state.container.behavior_service()
        pending = asyncio.ensure_future(service.analyze_many([RUNNING] * 5))
        await asyncio.sleep(0)  # queued, not yet run
    results = await pending
    assert [r.top_label for r in results] == ["running"] * 5
    assert json.dumps(dataclasses.asdict(results[0]))
