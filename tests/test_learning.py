"""Learning from operators through the HTTP API: labels on episodes (roles, validation,
audit, summary, retention), retraining as a job (the 8-episode minimum, figures side by side),
versions with a gate (409 and `force`), rollback, and the swap in the serving process."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import torch

from app.ml.checkpoint import load_checkpoint
from app.ml.data import load_basic_motions
from app.models.learning import ModelOrigin
from app.repositories.learning import ModelVersionRepository
from app.services.model_registry import _version_row
from tests.conftest import wait_for_job
from tests.eventing import T0, event, post

PERM = [1, 2, 0, 4, 5, 3]  # a camera mounted another way: axes reordered …
OFFSET = 0.5  # … and offset


@pytest.fixture(scope="module")
def motions():
    return load_basic_motions()


def drifted(x: np.ndarray) -> list[list[float]]:
    return (x[:, PERM] + OFFSET).round(5).tolist()


async def episode_with(
    client, frames: list[list[float]], source_id: str = "site-cam-1", at: datetime = T0
) -> str:
    """START carrying the frames, then END: a closed episode decided by the model."""
    await post(client, event("START", source_id, at=at, sequence=frames))
    done = await post(client, event("END", source_id, at=at, seconds=5))
    return done["episode_id"]


async def label(client, episode_id: str, value: str, note: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"label": value}
    if note is not None:
        body["note"] = note
    r = await client.post(f"/api/v1/episodes/{episode_id}/feedback", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_label_is_recorded_replaced_and_audited(client, motions):
    ep = await episode_with(client, motions.train.x[0].tolist())
    first = await label(client, ep, "walking", "청소 중인 직원")
    assert first["label"] == "walking" and first["changes"] == 1
    second = await label(client, ep, "running")
    assert second["label"] == "running" and second["changes"] == 2

    r = await client.get(f"/api/v1/episodes/{ep}")
    body = r.json()
    assert body["feedback"]["label"] == "running"
    assert body["feedback_outcome"] in {"confirmed", "miss"}
    listed = (await client.get("/api/v1/episodes")).json()["items"]
    assert [e["feedback"]["label"] for e in listed if e["id"] == ep] == ["running"]

    history = (await client.get(f"/api/v1/episodes/{ep}/feedback")).json()
    assert [(h["old_label"], h["new_label"]) for h in history["history"]] == [
        (None, "walking"),
        ("walking", "running"),
    ]
    assert history["history"][0]["note"] == "청소 중인 직원"
    assert history["current"]["label"] == "running"


async def test_labels_are_checked_against_the_model_and_the_episode(client, motions):
    ep = await episode_with(client, motions.train.x[0].tolist())
    r = await client.post(f"/api/v1/episodes/{ep}/feedback", json={"label": "fall"})
    assert r.status_code == 422
    error = r.json()
    assert error["details"]["labels"] == ["badminton", "running", "standing", "walking"]
    assert "badminton" in error["detail"] and error["code"] == "unknown_label"
    r = await client.post("/api/v1/episodes/fall/feedback", json={"label": "fall"})  # not a uuid
    assert r.status_code == 422
    r = await client.post(f"/api/v1/episodes/{uuid.uuid4()}/feedback", json={"label": "running"})
    assert r.status_code == 404
    r = await client.post(f"/api/v1/episodes/{ep}/feedback", json={"label": "x\nFAKE LOG"})
    assert r.status_code == 422
    # An open episode takes a label too (undecided until it closes).
    await post(client, event("START", "cam-open", sequence=motions.train.x[1].tolist()))
    open_id = (await client.get("/api/v1/episodes", params={"status": "open"})).json()["items"][0][
        "id"
    ]
    assert (await label(client, open_id, "badminton"))["outcome"] == "undecided"


async def test_the_summary_counts_false_alarms_and_misses_per_source(client, motions):
    x, y = motions.test.x, motions.test.y
    abnormal = [i for i, v in enumerate(y) if v in ("badminton", "running")]
    normal = [i for i, v in enumerate(y) if v in ("standing", "walking")]
    # The shipped model gets the clean data right: flagged episodes labelled normal are false
    # alarms, episodes judged normal labelled abnormal are misses.
    fa = await episode_with(client, x[abnormal[0]].tolist(), "cam-a")
    miss = await episode_with(client, x[normal[0]].tolist(), "cam-a", at=T0 + timedelta(minutes=1))
    ok = await episode_with(client, x[normal[1]].tolist(), "cam-b")
    assert (await label(client, fa, "walking"))["outcome"] == "false_alarm"
    assert (await label(client, miss, "running"))["outcome"] == "miss"
    assert (await label(client, ok, "standing"))["outcome"] == "confirmed"

    summary = (await client.get("/api/v1/feedback/summary")).json()
    by = {s["source_id"]: s for s in summary["sources"]}
    assert by["cam-a"] | {"false_alarm_rate": None} == {
        "source_id": "cam-a",
        "labelled": 2,
        "false_alarms": 1,
        "misses": 1,
        "with_sequence": 2,
        "false_alarm_rate": None,
    }
    assert by["cam-a"]["false_alarm_rate"] == 1.0
    assert summary["total"]["labelled"] == 3 and summary["total"]["false_alarms"] == 1
    only_b = (await client.get("/api/v1/feedback/summary", params={"source_id": "cam-b"})).json()
    assert [s["source_id"] for s in only_b["sources"]] == ["cam-b"]


async def test_retention_keeps_labelled_episodes(make_app, motions):
    async with make_app(retention={"episodes_days": 1}) as (app, client):
        old = datetime.now(UTC) - timedelta(days=3)
        kept = await episode_with(client, motions.train.x[0].tolist(), "cam-r", at=old)
        gone = await episode_with(
            client, motions.train.x[1].tolist(), "cam-r", at=old + timedelta(minutes=1)
        )
        await label(client, kept, "standing")
        service = app.state.container.retention_service()
        dry = await service.run(dry_run=True)
        assert dry.count("episodes") == 1 and dry.count("labelled_episodes_kept") == 1
        await service.run(dry_run=False)
        assert (await client.get(f"/api/v1/episodes/{kept}")).status_code == 200
        assert (await client.get(f"/api/v1/episodes/{gone}")).status_code == 404
        # The kept episode still carries its frames (what retraining learns from).
        summary = (await client.get("/api/v1/feedback/summary")).json()
        assert summary["total"]["with_sequence"] == 1
        await _clean(app)


async def _clean(app) -> None:
    from app.models import Base

    async with app.state.container.database().engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


async def test_retraining_needs_eight_usable_labelled_episodes(client, motions):
    for i in range(5):
        ep = await episode_with(client, drifted(motions.train.x[i]), at=T0 + timedelta(minutes=i))
        await label(client, ep, str(motions.train.y[i]))
    # A labelled episode without frames cannot be trained on.
    await post(client, event("START", "cam-noframes", at=T0))
    bare = (await post(client, event("END", "cam-noframes", at=T0, seconds=1)))["episode_id"]
    await label(client, bare, "running")

    # Refused before it becomes a job: a job failing for want of labels would page someone.
    r = await client.post("/api/v1/models/train", json={"include_feedback": True})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "not_enough_feedback"
    assert (
        "at least 8 labelled episodes with stored frames; 5 found (6 labelled" in r.json()["detail"]
    )
    assert (await client.get("/api/v1/jobs")).json()["items"] == []
    assert (await client.get("/api/v1/alerts")).json()["items"] == []


async def _site(client, motions, n: int, source: str = "site-cam-1") -> None:
    """`n` drifted training sequences posted as episodes and labelled with the truth."""
    for i in range(n):
        ep = await episode_with(
            client, drifted(motions.train.x[i]), source, at=T0 + timedelta(minutes=i)
        )
        await label(client, ep, str(motions.train.y[i]))


async def _analyze_version(client, frames) -> str:
    r = await client.post("/api/v1/behavior/analyze", json={"sequence": frames})
    assert r.status_code == 200, r.text
    return r.json()["model_version"]


async def test_retrain_gate_force_and_rollback(client, app, motions):
    shipped = app.state.container.inference_batcher().file_checkpoint.model_version
    await _site(client, motions, 40)
    r = await client.post("/api/v1/models/train", json={"include_feedback": True})
    assert r.status_code == 202, r.text
    job = await wait_for_job(client, r.json()["job_id"])
    assert job["state"] == "succeeded", job
    result = job["result"]
    candidate = result["model_version"]
    assert result["active_version"] == shipped
    for side in ("candidate", "active"):
        assert set(result[side]) == {"base_test", "feedback_holdout"}
        assert result[side]["base_test"]["n"] == 40
        assert result[side]["feedback_holdout"]["n"] == 8  # a stratified quarter: 2 per label
    assert result["trained_on"]["feedback_episodes"] == 32
    # The base training split (10 per label) plus the 8 kept site episodes of each label.
    assert result["trained_on"]["label_counts"] == {
        "badminton": 18,
        "running": 18,
        "standing": 18,
        "walking": 18,
    }

    listing = (await client.get("/api/v1/models")).json()
    assert listing["active"] == shipped
    status = {v["model_version"]: v["status"] for v in listing["items"]}
    assert status == {candidate: "candidate", shipped: "active"}
    assert listing["items"][0]["model_version"] == candidate  # newest first
    first = listing["items"][-1]
    assert first["origin"] == "shipped" and first["trained_on"]["label_counts"] == {
        "badminton": 10,
        "running": 10,
        "standing": 10,
        "walking": 10,
    }

    # A version worse than the active one is refused with the figures, unless forced.
    bad = load_checkpoint(app.state.container.settings().model.checkpoint_path)
    bad.state_dicts = [{k: torch.zeros_like(v) for k, v in bad.state_dicts[0].items()}]
    bad.model_version = "broken-zeros"
    async with app.state.container.database().sessions.begin() as session:
        await ModelVersionRepository(session).add(
            _version_row(bad, ModelOrigin.RETRAINED, shipped, "test")
        )
    r = await client.post("/api/v1/models/broken-zeros/activate", json={})
    assert r.status_code == 409, r.text
    gate = r.json()["details"]["gate"]
    assert gate["refused"] and gate["base_test"]["active"] == 1.0
    assert gate["base_test"]["candidate"] < 0.5
    assert "force" in r.json()["detail"]
    assert await _analyze_version(client, motions.test.x[0].tolist()) == shipped

    r = await client.post("/api/v1/models/broken-zeros/activate", json={"force": True})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["activations"][0]["forced"] is True
    assert await _analyze_version(client, motions.test.x[0].tolist()) == "broken-zeros"

    # The retrained candidate passes the gate against the broken one …
    r = await client.post(f"/api/v1/models/{candidate}/activate", json={"reason": "site data"})
    assert r.status_code == 200, r.text
    assert await _analyze_version(client, drifted(motions.test.x[0])) == candidate
    # … and it is right on the site's unseen sequences where the shipped one was not.
    right = 0
    for x, y in zip(motions.test.x, motions.test.y, strict=True):
        r = await client.post("/api/v1/behavior/analyze", json={"sequence": drifted(x)})
        right += r.json()["top_label"] == y
    assert right >= 36, right  # at least 90 %

    # Rollback: the shipped version again (the gate judges it on the candidate's held-out
    # feedback, where it is worse: it takes force, recorded).
    r = await client.post(f"/api/v1/models/{shipped}/activate", json={})
    assert r.status_code == 409
    assert r.json()["details"]["gate"]["feedback_holdout"]["n"] == 8
    r = await client.post(f"/api/v1/models/{shipped}/activate", json={"force": True})
    assert r.status_code == 200
    assert await _analyze_version(client, motions.test.x[0].tolist()) == shipped
    listing = (await client.get("/api/v1/models")).json()
    status = {v["model_version"]: v["status"] for v in listing["items"]}
    assert status == {candidate: "retired", shipped: "active", "broken-zeros": "retired"}
    # Episodes decided now name the version that decided them.
    ep = await episode_with(client, motions.test.x[0].tolist(), "cam-after")
    assert (await client.get(f"/api/v1/episodes/{ep}")).json()["model_version"] == shipped


async def test_unknown_versions_and_bad_bodies(client):
    assert (await client.post("/api/v1/models/nope/activate", json={})).status_code == 404
    assert (await client.get("/api/v1/models/nope")).status_code == 404
    assert (await client.get("/api/v1/models/a%20b")).status_code == 422
    r = await client.post("/api/v1/models/train", json={"include_feedback": False})
    assert r.status_code == 422
    r = await client.post("/api/v1/models/train", json={"epochs": 0})
    assert r.status_code == 422
    r = await client.post("/api/v1/models/x/activate", json={"force": "yes please"})
    assert r.status_code == 422


async def test_a_batch_in_flight_during_swaps_never_mixes_versions(app, motions):
    """Hundreds of concurrent sequences while the served version flips back and forth: every
    answer's probabilities are exactly what the version it names gives for that sequence."""
    batcher = app.state.container.inference_batcher()
    behavior = app.state.container.behavior_service()
    a = batcher.file_checkpoint
    b = load_checkpoint(app.state.container.settings().model.checkpoint_path)
    b.state_dicts = [{k: v * 0.5 for k, v in a.state_dicts[0].items()}]
    b.model_version = "half-weights"
    clf = {a.model_version: a.build_classifier(), b.model_version: b.build_classifier()}
    seqs = [motions.test.x[i % 40] for i in range(400)]

    async def flip() -> None:
        for n in range(20):
            await batcher.swap(b if n % 2 == 0 else a)
            await asyncio.sleep(0.005)

    try:
        results, _ = await asyncio.gather(
            asyncio.gather(*(behavior.analyze(s.tolist()) for s in seqs)), flip()
        )
    finally:
        await batcher.swap(a)
    seen = {r.model_version for r in results}
    assert seen <= set(clf) and len(results) == 400
    for seq, r in zip(seqs, results, strict=True):
        expected = clf[r.model_version].predict_proba([seq])[0]
        got = np.array([r.scores[label] for label in a.labels])
        assert np.allclose(got, expected, atol=1e-4), r.model_version


async def test_the_cli_retrains_and_activates_like_the_api(
    client, app, motions, settings_factory, monkeypatch, capsys
):
    from app.cli import main

    shipped = app.state.container.inference_batcher().file_checkpoint.model_version
    monkeypatch.setattr("app.cli.Settings", lambda: settings_factory())
    monkeypatch.setattr("app.cli_context.Settings", lambda: settings_factory())  # model commands
    await _site(client, motions, 5)
    code = await asyncio.to_thread(main, ["train-behavior", "--with-feedback", "--epochs", "2"])
    assert code == 2
    assert "Found 5 labelled episodes" in capsys.readouterr().err

    for i in range(5, 12):
        ep = await episode_with(
            client, drifted(motions.train.x[i]), "site-cam-2", at=T0 + timedelta(hours=1, minutes=i)
        )
        await label(client, ep, str(motions.train.y[i]))
    code = await asyncio.to_thread(
        main, ["train-behavior", "--with-feedback", "--epochs", "2", "--source-ids", "site-cam-2"]
    )
    out = capsys.readouterr()
    assert (
        code == 2 and "Found 7 labelled episodes with a stored sequence from site-cam-2" in out.err
    )

    code = await asyncio.to_thread(main, ["train-behavior", "--with-feedback", "--epochs", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "held-out feedback" in out and "base test split" in out
    version = next(line.split()[1] for line in out.splitlines() if line.startswith("candidate "))
    listing = (await client.get("/api/v1/models")).json()
    assert {v["model_version"]: v["status"] for v in listing["items"]}[version] == "candidate"

    code = await asyncio.to_thread(main, ["activate-model", version, "--force"])
    assert code == 0
    # The serving process notices within MODEL_SYNC_SECS (it did not make the activation).
    for _ in range(100):
        if await _analyze_version(client, motions.test.x[0].tolist()) == version:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the server never switched to the version the CLI activated")
    r = await client.post(f"/api/v1/models/{shipped}/activate", json={"force": True})
    assert r.status_code == 200
    assert await _analyze_version(client, motions.test.x[0].tolist()) == shipped


async def test_the_gate_speaks_korean(client, app, motions):
    shipped = app.state.container.inference_batcher().file_checkpoint.model_version
    bad = load_checkpoint(app.state.container.settings().model.checkpoint_path)
    bad.state_dicts = [{k: torch.zeros_like(v) for k, v in bad.state_dicts[0].items()}]
    bad.model_version = "broken-zeros-ko"
    async with app.state.container.database().sessions.begin() as session:
        await ModelVersionRepository(session).add(
            _version_row(bad, ModelOrigin.RETRAINED, shipped, "test")
        )
    r = await client.post(
        "/api/v1/models/broken-zeros-ko/activate", json={}, headers={"Accept-Language": "ko"}
    )
    assert r.status_code == 409
    assert r.json()["detail"].startswith("모델 버전 'broken-zeros-ko'이(가) 현재 버전")
    assert (
        "기본 시험 정확도 0.250 대 1.000" in r.json()["detail"] or "대 1.000" in r.json()["detail"]
    )
    r = await client.post(
        "/api/v1/episodes/00000000-0000-0000-0000-000000000000/feedback",
        json={"label": "fall"},
        headers={"Accept-Language": "ko"},
    )
    assert r.status_code == 422 and "알 수 없는 라벨 'fall'" in r.json()["detail"]
