"""The episode state machine through the API, and the decision rules as units."""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from app.core.errors import Unavailable, ValidationFailed
from app.models.event import Episode
from app.repositories.events import EpisodeState
from app.schemas.events import EventType
from app.services.episodes import EpisodeDecider, EpisodeTracker
from tests.eventing import ABNORMAL, NORMAL, abnormal_episode, event, post


async def episode(client, episode_id):
    r = await client.get(f"/api/v1/episodes/{episode_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_abnormal_probs_close_an_episode_as_abnormal_with_a_recorded_alert(client, app):
    end = await abnormal_episode(client, "cam-e1")
    ep = await episode(client, end["episode_id"])
    assert ep["status"] == "closed" and ep["close_reason"] == "end"
    assert ep["decision"] == "abnormal" and ep["decided_by"] == "probs"
    assert ep["event_count"] == 4 and ep["probs_count"] == 3
    assert ep["scores"] == pytest.approx(ABNORMAL)
    assert ep["anomaly_score"] == pytest.approx(0.9)  # fall + fight means
    _, threshold = app.state.container.episode_decider().policy()
    assert ep["top_label"] == "fall" and ep["threshold"] == pytest.approx(threshold)
    # No ALERT_CHANNELS in the test app: recorded only (issue 26, point 1).
    assert ep["alert_status"] == "undeliverable"


async def test_normal_probs_close_as_normal_without_an_alert(client):
    await post(client, event("START", "cam-e2"))
    await post(client, event("PROBS", "cam-e2", seconds=1, probs=NORMAL))
    end = await post(client, event("END", "cam-e2", seconds=2))
    ep = await episode(client, end["episode_id"])
    assert ep["decision"] == "normal" and ep["anomaly_score"] == pytest.approx(0.1)
    assert ep["alert_id"] is None
    assert (await client.get("/api/v1/alerts")).json()["items"] == []


async def test_end_without_start_is_a_one_event_episode_decided_from_the_end(client):
    end = await post(client, event("END", "cam-e3", probs=ABNORMAL))
    ep = await episode(client, end["episode_id"])
    assert ep["close_reason"] == "end_without_start" and ep["event_count"] == 1
    assert ep["decision"] == "abnormal"
    assert ep["started_at"] == ep["ended_at"]


async def test_second_start_supersedes_the_open_episode(client):
    first = await post(client, event("START", "cam-e4"))
    await post(client, event("PROBS", "cam-e4", seconds=1, probs=NORMAL))
    second = await post(client, event("START", "cam-e4", seconds=2))
    assert first["episode_id"] != second["episode_id"]
    old = await episode(client, first["episode_id"])
    assert old["status"] == "closed" and old["close_reason"] == "superseded"
    assert old["decision"] == "normal"
    assert (await episode(client, second["episode_id"]))["status"] == "open"


async def test_probs_without_an_open_episode_are_stored_unattached(client):
    r = await post(client, event("PROBS", "cam-e5", probs=ABNORMAL))
    assert r["episode_id"] is None
    assert (await client.get("/api/v1/episodes", params={"source_id": "cam-e5"})).json()[
        "items"
    ] == []


async def test_out_of_order_timestamps_count_but_never_reorder(client):
    start = await post(client, event("START", "cam-e6", seconds=10))
    await post(client, event("PROBS", "cam-e6", seconds=5, probs=NORMAL))  # before the start
    await post(client, event("END", "cam-e6", seconds=8))  # also before the start
    ep = await episode(client, start["episode_id"])
    assert ep["out_of_order"] == 2 and ep["event_count"] == 3
    assert ep["ended_at"] == ep["started_at"]
    assert ep["decision"] == "normal"


async def test_episode_without_probs_or_sequence_is_unknown(client):
    await post(client, event("START", "cam-e7"))
    end = await post(client, event("END", "cam-e7", seconds=1))
    ep = await episode(client, end["episode_id"])
    assert ep["decision"] == "unknown" and ep["decided_by"] == "none"


async def test_episodes_list_filters_and_paginates(client):
    for i in range(3):
        await post(client, event("END", f"cam-l{i}", seconds=i, probs=ABNORMAL if i else NORMAL))
    page = (await client.get("/api/v1/episodes", params={"limit": 2})).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (
        await client.get("/api/v1/episodes", params={"limit": 2, "cursor": page["next_cursor"]})
    ).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    abnormal = (await client.get("/api/v1/episodes", params={"decision": "abnormal"})).json()
    assert sorted(e["source_id"] for e in abnormal["items"]) == ["cam-l1", "cam-l2"]


# --- the decision as a unit, with a stand-in analyzer of the BehaviorService shape ---------


class StubAnalyzer:
    """Answers like BehaviorService: running-like (large values) frames are abnormal."""

    normal_labels = frozenset({"standing", "walking"})
    threshold = 0.6

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[list] = []

    async def analyze(self, sequence):
        self.calls.append(sequence)
        if self.fail:
            raise self.fail
        running = max(abs(v) for frame in sequence for v in frame) > 5
        p = 0.9 if running else 0.1
        return SimpleNamespace(
            is_anomaly=p >= self.threshold,
            normal_score=1 - p,
            anomaly_score=p,
            threshold=self.threshold,
            top_label="running" if running else "standing",
            labels=["standing", "walking", "running", "badminton"],
            scores={"running": p, "standing": 1 - p},
            model_version="stub-1",
            inference_ms=0.1,
        )


def _episode(probs_sum=None, count=0, sequence=None) -> EpisodeState:
    return EpisodeState(
        id=uuid.uuid4(),
        source_id="s",
        started_at=datetime.now(UTC),
        probs_sum=probs_sum or {},
        probs_count=count,
        sequence=sequence,
    )


def test_the_ingest_working_copy_has_every_episodes_column():
    # The ingest path reads open episodes into EpisodeState by column name and writes them back
    # field by field: a column added to the model must be added there too.
    assert {f.name for f in fields(EpisodeState)} == set(Episode.__table__.columns.keys())


async def test_sequence_decides_through_the_analyzer_when_attached():
    analyzer = StubAnalyzer()
    decider = EpisodeDecider(analyzer, None)
    decision = await decider.decide(_episode({"normal": 1.0}, 1), [[9.0] * 6] * 10)
    assert decision.decision == "abnormal" and decision.decided_by == "sequence"
    assert decision.top_label == "running" and decision.model_version == "stub-1"
    calm = await decider.decide(_episode(), [[0.1] * 6] * 10)
    assert calm.decision == "normal"


async def test_accumulated_sequence_is_used_when_the_end_has_none():
    decider = EpisodeDecider(StubAnalyzer(), None)
    decision = await decider.decide(_episode(sequence=[[9.0] * 6] * 4), None)
    assert decision.decided_by == "sequence" and decision.decision == "abnormal"


async def test_probs_decision_uses_the_analyzer_normal_labels_and_threshold():
    decider = EpisodeDecider(StubAnalyzer(), None)
    # walking is normal for the model; 0.55 running is below its 0.6 threshold.
    decision = decider.from_probs(_episode({"walking": 0.45, "running": 0.55}, 1))
    assert decision.decision == "normal" and decision.threshold == 0.6
    decision = decider.from_probs(_episode({"Walking": 0.3, "running": 0.7}, 1))
    assert decision.decision == "abnormal" and decision.anomaly_score == pytest.approx(0.7)


async def test_unavailable_model_falls_back_to_probs():
    decider = EpisodeDecider(StubAnalyzer(fail=Unavailable("no model")), None)
    decision = await decider.decide(_episode({"fall": 0.9, "normal": 0.1}, 1), [[1.0]])
    assert decision.decided_by == "probs" and decision.decision == "abnormal"


async def test_a_bad_sequence_on_the_end_is_a_validation_error():
    decider = EpisodeDecider(
        StubAnalyzer(fail=ValidationFailed("frames have 5 features; the model expects 6")), None
    )
    with pytest.raises(ValidationFailed, match="sequence: frames have 5 features"):
        await decider.decide(_episode(), [[1.0] * 5])
    # An accumulated bad sequence cannot be fixed by the sender of the END: fall back.
    decision = await decider.decide(_episode({"normal": 1.0}, 1, sequence=[[1.0] * 5]), None)
    assert decision.decided_by == "probs"


async def test_without_an_analyzer_defaults_apply():
    decider = EpisodeDecider(None, 0.7)
    decision = decider.from_probs(_episode({"standing": 0.35, "fall": 0.65}, 1))
    assert decision.decision == "normal" and decision.threshold == 0.7


# --- the real behaviour analyzer on the sequence path --------------------------------------


async def test_end_with_a_running_like_sequence_is_abnormal_through_the_model(client):
    from app.schemas.behavior import examples

    running = examples()["running"]["sequence"]
    standing = examples()["standing"]["sequence"]
    await post(client, event("START", "cam-seq"))
    await post(client, event("PROBS", "cam-seq", seconds=1, probs=NORMAL))
    end = await post(client, event("END", "cam-seq", seconds=2, sequence=running))
    ep = await episode(client, end["episode_id"])
    assert ep["decided_by"] == "sequence" and ep["decision"] == "abnormal"
    assert ep["top_label"] == "running" and ep["model_version"]
    assert ep["anomaly_score"] >= ep["threshold"] and ep["alert_status"] == "undeliverable"

    # The same probabilities with a standing-like sequence: normal, no alert.
    await post(client, event("START", "cam-seq-2"))
    end = await post(client, event("END", "cam-seq-2", seconds=2, sequence=standing))
    ep = await episode(client, end["episode_id"])
    assert ep["decided_by"] == "sequence" and ep["decision"] == "normal"
    assert ep["top_label"] == "standing" and ep["alert_id"] is None


async def test_sequence_frames_accumulated_from_probs_are_decided_at_end(client, app):
    from app.schemas.behavior import examples

    running = examples()["running"]["sequence"]
    start = await post(client, event("START", "cam-acc"))
    await post(client, event("PROBS", "cam-acc", seconds=1, sequence=running[:50]))
    await post(client, event("PROBS", "cam-acc", seconds=1.5))  # no frames: keeps the 50
    await post(client, event("PROBS", "cam-acc", seconds=2, sequence=running[50:]))
    async with app.state.container.database().sessions() as session:
        stored = await session.get(Episode, uuid.UUID(start["episode_id"]))
        assert stored is not None and stored.sequence == running
        assert stored.event_count == 4 and stored.status == "open"
    end = await post(client, event("END", "cam-acc", seconds=3))
    ep = await episode(client, end["episode_id"])
    assert ep["decided_by"] == "sequence" and ep["top_label"] == "running"


async def test_end_with_a_sequence_of_the_wrong_width_is_422_and_nothing_stored(client):
    await post(client, event("START", "cam-width"))
    r = await client.post(
        "/api/v1/events", json=event("END", "cam-width", seconds=1, sequence=[[0.1] * 5] * 10)
    )
    assert r.status_code == 422, r.text
    assert "sequence" in r.json()["detail"] and "expects 6" in r.json()["detail"]
    [ep] = (await client.get("/api/v1/episodes", params={"source_id": "cam-width"})).json()["items"]
    assert ep["status"] == "open"


def _tracker() -> EpisodeTracker:
    return EpisodeTracker(EpisodeDecider(None, fallback_threshold=0.5), max_sequence_frames=100)


_NOWHERE = SimpleNamespace(add=lambda row: None)  # stands in for EpisodeRepository.add


@pytest.mark.parametrize(
    ("event_type", "opens", "closes"),
    [
        (EventType.START, True, 0),
        (EventType.PROBS, False, 0),
        (EventType.END, False, 1),
        (EventType.HEARTBEAT, False, 0),
    ],
)
async def test_every_event_type_has_a_rule_without_an_open_episode(event_type, opens, closes):
    assert {EventType.START, EventType.PROBS, EventType.END, EventType.HEARTBEAT} == set(EventType)
    transition = await _tracker().apply(
        _NOWHERE,
        None,
        source_id="cam-sm",
        event_type=event_type,
        at=datetime.now(UTC),
        probs=None,
        sequence=None,
    )
    assert (transition.open_after is not None) is opens
    assert len(transition.closed) == closes
    if closes:
        assert transition.closed[0].close_reason == "end_without_start"


async def test_a_heartbeat_leaves_the_open_episode_as_it_was():
    tracker = _tracker()
    at = datetime.now(UTC)
    opened = await tracker.apply(
        _NOWHERE,
        None,
        source_id="cam-hb",
        event_type=EventType.START,
        at=at,
        probs=None,
        sequence=None,
    )
    beat = await tracker.apply(
        _NOWHERE,
        opened.open_after,
        source_id="cam-hb",
        event_type=EventType.HEARTBEAT,
        at=at,
        probs=None,
        sequence=None,
    )
    assert beat.open_after is opened.open_after and beat.episode_id is None
    assert opened.open_after.event_count == 1


async def test_an_event_type_outside_the_enum_is_refused():
    with pytest.raises(AssertionError):
        await _tracker().apply(
            _NOWHERE,
            None,
            source_id="cam-x",
            event_type="PAUSE",
            at=datetime.now(UTC),
            probs=None,
            sequence=None,
        )


async def test_episode_detail_carries_its_events_and_events_filter_by_episode(client):
    """The detail lists the episode's events, newest first, and pages on through
    GET /events?episode_id= (another source's events never mix in)."""
    await abnormal_episode(client, "cam-other")
    end = await abnormal_episode(client, "cam-e-detail")
    ep = await episode(client, end["episode_id"])
    assert [e["event_type"] for e in ep["events"]] == ["END", "PROBS", "PROBS", "START"]
    assert {e["episode_id"] for e in ep["events"]} == {end["episode_id"]}
    assert ep["events_next_cursor"] is None

    r = await client.get(f"/api/v1/episodes/{end['episode_id']}", params={"events_limit": 3})
    first = r.json()
    assert [e["event_type"] for e in first["events"]] == ["END", "PROBS", "PROBS"]
    r = await client.get(
        "/api/v1/events",
        params={"episode_id": end["episode_id"], "cursor": first["events_next_cursor"]},
    )
    assert r.status_code == 200, r.text
    assert [e["event_type"] for e in r.json()["items"]] == ["START"]
    r = await client.get("/api/v1/events", params={"episode_id": end["episode_id"]})
    assert len(r.json()["items"]) == 4

    r = await client.get(f"/api/v1/episodes/{end['episode_id']}", params={"events_limit": 0})
    assert r.json()["events"] == [] and r.json()["event_count"] == 4
    r = await client.get("/api/v1/events", params={"episode_id": str(uuid.uuid4())})
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get("/api/v1/events", params={"episode_id": "not-a-uuid"})
    assert r.status_code == 422
    r = await client.get(f"/api/v1/episodes/{end['episode_id']}", params={"events_limit": 501})
    assert r.status_code == 422
