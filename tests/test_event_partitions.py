"""Daily partitions of `events` on PostgreSQL (issue 25, point 3), on a database of their own
whatever backend the suite runs on: the migration converts existing rows, partitions are made
ahead and take back what the default partition caught, retention drops whole days (keeping a day
whose heartbeats must stay) and deletes only the rest row by row, and ingest still recognises a
repeated event id through the HTTP API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.core.database import Database, run_migrations
from app.core.lock import LockService
from app.core.redis import RedisManager
from app.core.settings import DatabaseSettings, EventSettings, RedisSettings, RetentionSettings
from app.repositories.partitions import DEFAULT, EventPartitions, day_start, partition_name
from app.services.event_log import EventLog
from app.services.event_partitions import PARTITIONS_AHEAD_DAYS, EventPartitionService
from app.services.retention import RetentionKind, RetentionService
from tests.conftest import SHARED_PG_URL, pg_database

NOW = datetime.now(UTC)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """An empty PostgreSQL database (no migration yet), dropped afterwards."""
    async with pg_database(
        SHARED_PG_URL, f"sentinel_partitions_{uuid.uuid4().hex[:10]}", "PostgreSQL"
    ) as url:
        yield url


def _downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from app.core.settings import ROOT_DIR

    cfg = Config(str(ROOT_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT_DIR / "migration"))
    cfg.attributes["database_url"] = url
    command.downgrade(cfg, revision)


async def _insert(db: Database, rows: list[tuple[datetime, str]]) -> list[uuid.UUID]:
    """Events received at the given times (`received_at` decides the partition)."""
    ids = [uuid.uuid4() for _ in rows]
    async with db.engine.begin() as conn:
        for event_id, (at, event_type) in zip(ids, rows, strict=True):
            await conn.execute(
                text(
                    "INSERT INTO events (id, source_id, event_type, occurred_at, received_at) "
                    "VALUES (:id, 'cam-p', :t, :at, :at)"
                ),
                {"id": event_id, "t": event_type, "at": at},
            )
    return ids


async def _where(db: Database) -> dict[str, int]:
    """Rows per partition (table name → count)."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1")
        )
        return {name: n for name, n in rows}


async def _days(db: Database) -> list:
    async with db.engine.connect() as conn:
        return await EventPartitions(conn).days()


async def test_the_migration_moves_existing_rows_into_daily_partitions_and_back(pg_url: str):
    await asyncio.to_thread(run_migrations, pg_url, "0014_incidents")
    db = Database(DatabaseSettings(url=pg_url))
    try:
        days_ago_10 = NOW - timedelta(days=10)
        years_ago = NOW - timedelta(days=800)  # too old for a partition: the default holds it
        await _insert(db, [(days_ago_10, "PROBS"), (NOW, "START"), (years_ago, "END")])
        await asyncio.to_thread(run_migrations, pg_url, "head")
        where = await _where(db)
        assert where == {
            partition_name(days_ago_10.date()): 1,
            partition_name(NOW.date()): 1,
            DEFAULT: 1,
        }
        days = await _days(db)
        assert days[-1] == NOW.date() + timedelta(days=PARTITIONS_AHEAD_DAYS)
        assert (NOW.date() - timedelta(days=1)) in days
        async with db.engine.connect() as conn:
            assert await EventPartitions(conn).is_partitioned()
        # And back: one plain table with every row.
        await asyncio.to_thread(_downgrade, pg_url, "0014_incidents")
        assert await _where(db) == {"events": 3}
        await asyncio.to_thread(run_migrations, pg_url, "head")
        assert sum((await _where(db)).values()) == 3
    finally:
        await db.engine.dispose()


async def test_partitions_are_made_ahead_and_take_back_what_the_default_caught(pg_url: str):
    await asyncio.to_thread(run_migrations, pg_url, "head")
    db = Database(DatabaseSettings(url=pg_url))
    service = EventPartitionService(db)
    try:
        later = NOW + timedelta(days=PARTITIONS_AHEAD_DAYS + 3)  # a day nobody made ahead
        await _insert(db, [(later, "PROBS"), (later, "END")])
        assert (await _where(db)).get(DEFAULT) == 2
        created = await service.ensure(later)  # the clock has moved on
        assert later.date() in created
        assert await _where(db) == {partition_name(later.date()): 2}
        assert await service.ensure(later) == []  # nothing left to make
        # Two processes at once: one makes them, the other finds them made.
        much_later = later + timedelta(days=30)
        made = await asyncio.gather(service.ensure(much_later), service.ensure(much_later))
        assert sorted(made[0] + made[1]) == sorted(set(made[0] + made[1]))
        assert much_later.date() in await _days(db)
    finally:
        await db.engine.dispose()


async def test_retention_drops_whole_days_and_deletes_only_the_rest(pg_url: str, tmp_path):
    await asyncio.to_thread(run_migrations, pg_url, "head")
    db = Database(DatabaseSettings(url=pg_url))
    partitions = EventPartitionService(db)
    try:
        first = (NOW - timedelta(days=12)).date()
        await partitions.ensure(NOW, first=first)
        rows = [(NOW - timedelta(days=d, hours=1), "PROBS") for d in range(12) for _ in range(3)]
        # A heartbeat 9 days ago: heartbeats are kept forever below, so its day stays.
        rows.append((NOW - timedelta(days=9, hours=2), "HEARTBEAT"))
        await _insert(db, rows)
        settings = RetentionSettings(events_days=5, heartbeats_days=0, batch_size=2)
        service = RetentionService(
            db,
            settings,
            LockService(RedisManager(RedisSettings(url=""))),
            EventLog(EventSettings(log_path=str(tmp_path / "events.jsonl"))),
        )
        # Whole UTC days: the cutoff is the start of the day 5 days ago.
        cutoff = day_start((NOW - timedelta(days=5)).date())
        expired = sum(1 for at, t in rows if t == "PROBS" and at < cutoff)
        assert expired >= 3 * 6
        before = await _days(db)
        dry = await service.run(dry_run=True)
        assert dry.count(RetentionKind.events) == expired
        assert await _days(db) == before and sum((await _where(db)).values()) == len(rows)
        report = await service.run(dry_run=False)
        assert report.count(RetentionKind.events) == expired
        assert [i.cutoff for i in report.items if i.kind == RetentionKind.events] == [cutoff]
        days = await _days(db)
        # Every whole day before the cutoff is gone but the heartbeat's, whose events went one
        # by one; the days from the cutoff on stay.
        heartbeat_day = (NOW - timedelta(days=9, hours=2)).date()
        assert [d for d in before if d not in days] == [
            d for d in before if d < cutoff.date() and d != heartbeat_day
        ]
        assert heartbeat_day in days
        async with db.engine.connect() as conn:
            left = list(await conn.execute(text("SELECT event_type, received_at FROM events")))
        assert [t for t, at in left if at < cutoff] == ["HEARTBEAT"]
        assert sum(1 for t, _ in left if t == "PROBS") == 3 * 12 - expired
        again = await service.run(dry_run=False)
        assert again.count(RetentionKind.events) == 0
    finally:
        await db.engine.dispose()


async def test_ingest_recognises_a_repeat_on_the_partitioned_table(pg_url: str, make_app):
    """Repeats through the API on a fresh partitioned database (twins racing in from another
    process: `tests/test_ingest_retries.py`, which runs on it with the whole suite), and the
    ids older than `EVENT_DEDUP_DAYS` are forgotten."""
    await asyncio.to_thread(run_migrations, pg_url, "head")
    async with make_app(db={"url": pg_url, "migrate_on_start": False}, redis={"url": ""}) as (
        app,
        client,
    ):
        event = {
            "event_id": str(uuid.uuid4()),
            "source_id": "cam-p",
            "event_type": "PROBS",
            "timestamp": NOW.isoformat(),
            "probs": {"normal": 0.9},
        }
        first = await client.post("/api/v1/events", json=event)
        again = await client.post("/api/v1/events", json=event)
        batch = await client.post("/api/v1/events/batch", json={"events": [event, event]})
        new = await client.post("/api/v1/events", json={**event, "event_id": str(uuid.uuid4())})
        partitions = app.state.container.event_partitions()
        assert await partitions.prune_ids(datetime.now(UTC)) == 0  # both within the window
        later = datetime.now(UTC) + timedelta(days=partitions.dedup_days, seconds=1)
        assert await partitions.prune_ids(later) == 2
    assert first.status_code == again.status_code == new.status_code == 202, first.text
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert batch.status_code == 202 and all(r["duplicate"] for r in batch.json()["results"])
    assert new.json()["duplicate"] is False
    db = Database(DatabaseSettings(url=pg_url))
    try:
        assert await _where(db) == {partition_name(datetime.now(UTC).date()): 2}
    finally:
        await db.engine.dispose()


async def test_recent_events_read_the_last_day_first_and_widen_until_full(pg_url: str):
    """The database fallback of `/events/recent` asks the last day, then the week, then all:
    the answer is the newest events by receive time whichever window fills the page."""
    from app.repositories.events import EventRepository

    await asyncio.to_thread(run_migrations, pg_url, "head")
    db = Database(DatabaseSettings(url=pg_url))
    try:
        await EventPartitionService(db).ensure(NOW, first=(NOW - timedelta(days=40)).date())
        ages = [0.1, 0.2, 3, 5, 10, 30]  # days
        ids = await _insert(db, [(NOW - timedelta(days=d), "PROBS") for d in ages])
        async with db.sessions() as session:
            repo = EventRepository(session)
            for limit, expected in [(2, ids[:2]), (4, ids[:4]), (6, ids), (10, ids)]:
                got = await repo.recent("cam-p", limit, now=NOW)
                assert [e.id for e in got] == expected, limit
            assert await repo.recent("cam-other", 5, now=NOW) == []
    finally:
        await db.engine.dispose()


async def test_a_day_that_cannot_be_dropped_goes_row_by_row(pg_url: str, tmp_path, monkeypatch):
    """A drop refused (a lock wait past its timeout, no right to drop) fails nothing: retention
    deletes that day's expired rows one by one and says so."""
    await asyncio.to_thread(run_migrations, pg_url, "head")
    db = Database(DatabaseSettings(url=pg_url))
    try:
        await EventPartitionService(db).ensure(NOW, first=(NOW - timedelta(days=8)).date())
        await _insert(db, [(NOW - timedelta(days=d), "PROBS") for d in (6, 7, 1)])

        async def refuse(self, day) -> None:
            raise RuntimeError("lock timeout")

        monkeypatch.setattr(EventPartitions, "drop", refuse)
        service = RetentionService(
            db,
            RetentionSettings(events_days=3, heartbeats_days=0, batch_size=2),
            LockService(RedisManager(RedisSettings(url=""))),
            EventLog(EventSettings(log_path=str(tmp_path / "events.jsonl"))),
        )
        report = await service.run(dry_run=False)
        assert report.count(RetentionKind.events) == 2
        assert await _where(db) == {partition_name((NOW - timedelta(days=1)).date()): 1}
    finally:
        await db.engine.dispose()


async def test_an_id_stored_twice_after_the_dedup_window_reads_back_as_two_rows(pg_url: str):
    """A repeat arriving after `EVENT_DEDUP_DAYS` is a second row (the key is (id, received_at));
    lists show both, each with its own receive time, instead of one row twice."""
    from app.repositories.events import EventRepository
    from app.schemas.events import EventFilter

    await asyncio.to_thread(run_migrations, pg_url, "head")
    db = Database(DatabaseSettings(url=pg_url))
    try:
        await EventPartitionService(db).ensure(NOW, first=(NOW - timedelta(days=10)).date())
        event_id = uuid.uuid4()
        first, later = NOW - timedelta(days=9), NOW - timedelta(hours=1)
        async with db.engine.begin() as conn:
            for at in (first, later):
                await conn.execute(
                    text(
                        "INSERT INTO events (id, source_id, event_type, occurred_at, received_at) "
                        "VALUES (:id, 'cam-p', 'PROBS', :at, :at)"
                    ),
                    {"id": event_id, "at": at},
                )
        async with db.sessions() as session:
            repo = EventRepository(session)
            page = await repo.page(EventFilter(source_id="cam-p"), limit=10, cursor=None)
            recent = await repo.recent("cam-p", 10, now=NOW)
        for rows in (page.items, recent):
            assert sorted(e.received_at for e in rows) == [first, later]
    finally:
        await db.engine.dispose()
