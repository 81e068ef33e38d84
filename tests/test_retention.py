"""Retention with back-dated rows (runs on PostgreSQL and on SQLite, like the whole suite):
everything older than its window goes, in batches; everything newer stays."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from app.core.database import run_migrations
from app.core.settings import RetentionSettings
from app.models.alert import Alert
from app.models.event import Episode, Event
from app.models.job import Job
from app.models.knowledge import Conversation, ConversationTurn
from app.models.usage import LLMUsageDay
from app.repositories.usage import USAGE_FIELDS
from app.services.retention import RUN_LOCK, RetentionKind, RetentionScheduler, RetentionService

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _fresh_now() -> None:
    """Back-date from this test's start, not the module's import (a run may cross midnight)."""
    global NOW
    NOW = datetime.now(UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _event(days: float, event_type: str = "PROBS", episode_id: uuid.UUID | None = None) -> Event:
    return Event(
        id=uuid.uuid4(),
        source_id="cam-retention",
        event_type=event_type,
        occurred_at=ago(days),
        received_at=ago(days),
        episode_id=episode_id,
    )


def _episode(days: float, status: str = "closed") -> Episode:
    return Episode(
        id=uuid.uuid4(),
        source_id="cam-retention",
        status=status,
        started_at=ago(days + 0.01),
        ended_at=ago(days) if status == "closed" else None,
        created_at=ago(days),
        updated_at=ago(days),
    )


def _conversation(days: float, turn_days: float) -> Conversation:
    conversation = Conversation(id=uuid.uuid4(), created_at=ago(days))
    conversation.turns.append(
        ConversationTurn(
            question="q",
            answer="a",
            provider="local",
            model="",
            created_at=ago(turn_days),
        )
    )
    return conversation


def _usage(day_offset: int) -> LLMUsageDay:
    zeros = dict.fromkeys(USAGE_FIELDS - {"cost_usd"}, 0)
    return LLMUsageDay(
        day=NOW.date() - timedelta(days=day_offset),
        provider="gemini",
        model="m",
        cost_usd=0.0,
        **zeros,
    )


def _service(app, **windows: int) -> RetentionService:
    c = app.state.container
    values = {
        "events_days": 30,
        "heartbeats_days": 3,
        "episodes_days": 90,
        "conversations_days": 30,
        "llm_usage_days": 400,
        "batch_size": 2,  # several batches per kind
        **windows,
    }
    settings = RetentionSettings(**values)
    return RetentionService(c.database(), settings, c.locks(), c.event_log(), c.vector_store())


async def _ids(app, column) -> set:
    async with app.state.container.database().sessions() as session:
        return set((await session.scalars(select(column))).all())


async def _summary_ids(app, ids: list[str]) -> list[str]:
    vs = app.state.container.vector_store()
    found = await vs._run(lambda: vs._collection(vs.events_collection).get(ids=ids))
    return sorted(found["ids"])


async def test_retention_deletes_what_is_older_than_each_window_and_keeps_the_rest(app, client):
    c = app.state.container
    old_events = [_event(40 + i) for i in range(5)]
    new_events = [_event(29), _event(1)]
    old_beats = [_event(4, "HEARTBEAT"), _event(10, "HEARTBEAT"), _event(5, "HEARTBEAT")]
    new_beats = [_event(2, "HEARTBEAT")]
    old_episodes = [_episode(100), _episode(91), _episode(120)]
    new_episodes = [_episode(89), _episode(200, status="open")]  # open ones are live
    # An event inside its window that belongs to an expired episode is kept, unlinked.
    linked = _event(20, episode_id=old_episodes[0].id)
    alert = Alert(
        id=uuid.uuid4(),
        episode_id=old_episodes[0].id,
        source_id="cam-retention",
        status="sent",
        text="alert",
        attempts=1,
    )
    old_conversations = [_conversation(40, 35), _conversation(60, 31)]
    new_conversations = [_conversation(40, 2), _conversation(1, 1)]  # the first is still in use
    async with c.database().sessions.begin() as session:
        session.add_all(old_episodes + new_episodes)
        await session.flush()
        session.add_all(old_events + new_events + old_beats + new_beats + [linked, alert])
        session.add_all(old_conversations + new_conversations)
        session.add_all([_usage(401), _usage(500), _usage(399), _usage(0)])

    log_dir = c.event_log().path.parent
    old_log = log_dir / f"{c.event_log().path.stem}.{ago(31):%Y%m%dT%H%M%S%f}.jsonl"
    new_log = log_dir / f"{c.event_log().path.stem}.{ago(2):%Y%m%dT%H%M%S%f}.jsonl"
    old_log.write_text('{"old": true}\n')
    new_log.write_text('{"new": true}\n')

    summary_ids = [f"episode:{e.id}" for e in old_episodes[:2] + new_episodes[:1]]
    await c.vector_store().upsert_events(
        [(i, f"summary {i}", {"source_id": "cam-retention"}) for i in summary_ids]
    )

    service = _service(app)
    expected = {
        RetentionKind.events: 5,
        RetentionKind.heartbeats: 3,
        RetentionKind.episodes: 3,
        RetentionKind.conversations: 2,
        RetentionKind.llm_usage: 2,
        RetentionKind.event_log_files: 1,
    }

    dry = await service.run(dry_run=True)
    assert dry.ran and dry.dry_run
    assert {k: dry.count(k) for k in expected} == expected
    assert len(await _ids(app, Event.id)) == 12 and old_log.exists()

    before = REGISTRY.get_sample_value("sentinel_retention_deleted_total", {"kind": "events"}) or 0
    report = await service.run(dry_run=False)
    assert {k: report.count(k) for k in expected} == expected
    assert report.count(RetentionKind.episode_summaries) == 3

    assert await _ids(app, Event.id) == {e.id for e in new_events + new_beats + [linked]}
    assert await _ids(app, Episode.id) == {e.id for e in new_episodes}
    assert await _ids(app, Alert.id) == set()
    assert await _ids(app, Conversation.id) == {cv.id for cv in new_conversations}
    async with c.database().sessions() as session:
        assert await session.scalar(select(Event.episode_id).where(Event.id == linked.id)) is None
        turns = await session.scalar(select(func.count()).select_from(ConversationTurn))
        assert turns == 2
        # Only this test's rows: another app's usage buffer may flush today's counts meanwhile.
        days = set(await session.scalars(select(LLMUsageDay.day).where(LLMUsageDay.model == "m")))
    assert days == {NOW.date() - timedelta(days=399), NOW.date()}
    assert not old_log.exists() and new_log.exists()
    assert await _summary_ids(app, summary_ids) == [f"episode:{new_episodes[0].id}"]
    after = REGISTRY.get_sample_value("sentinel_retention_deleted_total", {"kind": "events"})
    assert after - before == 5

    # A second run finds nothing more.
    again = await service.run(dry_run=False)
    assert all(item.count == 0 for item in again.items)
    new_log.unlink()


async def test_a_window_of_zero_keeps_everything(app, client):
    async with app.state.container.database().sessions.begin() as session:
        session.add(_event(1000))
    report = await _service(app, events_days=0).run(dry_run=False)
    assert RetentionKind.events not in {item.kind for item in report.items}
    assert len(await _ids(app, Event.id)) == 1


async def test_only_one_run_at_a_time(app, client):
    locks = app.state.container.locks()
    token = await locks.acquire(RUN_LOCK, 30)
    assert token
    try:
        report = await _service(app).run(dry_run=False)
        assert not report.ran and report.items == []
    finally:
        await locks.release(RUN_LOCK, token)


def test_cli_dry_run_prints_what_would_go(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    run_migrations(url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_URL"))},
        "DATABASE_URL": url,
        "CHROMA_PATH": str(tmp_path / "chroma"),
        "EVENT_LOG_PATH": str(tmp_path / "events.jsonl"),
        "LOG_LEVEL": "WARNING",
    }
    sentinel = Path(sys.executable).with_name("sentinel")
    result = subprocess.run(
        [str(sentinel), "retention", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "events" in result.stdout and "would delete" in result.stdout
    assert "older than 30 days" in result.stdout


async def test_scheduled_retention_is_queued_once_per_slot_however_many_processes_tick(app, client):
    """Two schedulers sharing the lock (as two replicas share Redis) queue one job per slot,
    through the job service, and every process reports the last successful run's time."""
    jobs = app.state.container.job_service()
    service = _service(app)
    first, second = (
        RetentionScheduler(service, service.settings, jobs),
        RetentionScheduler(service, service.settings, jobs),
    )
    slot = int(time.time() // service.settings.interval_secs) + 10_000  # not the live loop's
    assert [await first.tick(slot), await second.tick(slot)] == [True, False]
    assert [await second.tick(slot + 1), await first.tick(slot + 1)] == [True, False]
    async with app.state.container.database().sessions() as session:
        rows = (await session.scalars(select(Job).where(Job.name == "retention"))).all()
    queued = [j for j in rows if j.params.get("slot") in (slot, slot + 1)]
    assert sorted(j.params["slot"] for j in queued) == [slot, slot + 1]
    assert all(j.params["dry_run"] is False and j.created_by == "scheduler" for j in queued)
    for job in queued:  # the embedded mode runs them in this process
        for _ in range(200):
            if (await client.get(f"/api/v1/jobs/{job.id}")).json()["state"] == "succeeded":
                break
            await asyncio.sleep(0.05)
    await first.tick(slot + 2)
    assert (
        REGISTRY.get_sample_value("sentinel_retention_last_run_timestamp_seconds")
        >= time.time() - 60
    )


async def test_a_slow_tick_delays_the_next_slot_but_never_skips_it():
    # A tick slower than the interval (a loaded machine, a slow database) used to skip the
    # slot whose boundary passed meanwhile; the replicas test saw it as a gap.
    interval = 0.3
    ticked: list[int] = []

    class Recording(RetentionScheduler):
        async def tick(self, slot: int) -> bool:
            ticked.append(slot)
            if len(ticked) == 1:
                await asyncio.sleep(interval * 1.6)  # past the next boundary
            return True

    settings = RetentionSettings.model_validate({"interval_secs": interval})
    scheduler = Recording(None, settings, None)  # type: ignore[arg-type]  # tick is replaced
    task = asyncio.create_task(scheduler._loop())
    await asyncio.sleep(interval * 6)
    task.cancel()
    assert len(ticked) >= 4
    assert ticked == list(range(ticked[0], ticked[0] + len(ticked)))
