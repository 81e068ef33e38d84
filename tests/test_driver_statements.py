"""The ingest's PostgreSQL statements that run on the driver connection (issue 25, PROBS ingest),
on a database of their own whatever backend the suite runs on: they store exactly what
SQLAlchemy's statements store, read back what SQLAlchemy reads, raise SQLAlchemy's exception
classes, and refuse to run outside a transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text

from app.core.database import Database, run_migrations
from app.core.settings import DatabaseSettings
from app.models.event import Event
from app.repositories import driver
from app.repositories.events import (
    EpisodeRepository,
    EpisodeState,
    EventRepository,
    NewEvent,
    SourceRepository,
    _event_insert,
)
from tests.conftest import SHARED_PG_URL, pg_database

NOW = datetime.now(UTC).replace(microsecond=123456)


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with pg_database(
        SHARED_PG_URL, f"sentinel_driver_{uuid.uuid4().hex[:10]}", "PostgreSQL"
    ) as url:
        await asyncio.to_thread(run_migrations, url)
        database = Database(DatabaseSettings(url=url))
        try:
            yield database
        finally:
            await database.dispose()


def _event(source: str, **values: object) -> NewEvent:
    fields: dict = {
        "id": uuid.uuid4(),
        "source_id": source,
        "event_type": "PROBS",
        "occurred_at": NOW - timedelta(seconds=3),
        "received_at": NOW,
        "probs": {"fall": 0.25, "정상": 0.75},
        "sequence": None,
        "meta": None,
        "episode_id": None,
    }
    fields.update(values)
    return NewEvent(**fields)  # type: ignore[arg-type]


_STORED = (
    "SELECT source_id, event_type, occurred_at, received_at, probs::text, sequence::text, "
    "metadata::text, episode_id FROM events WHERE id = :id"
)


async def test_events_are_stored_exactly_as_sqlalchemy_stores_them(db: Database):
    variants = [
        {},
        {"probs": None, "meta": {"fps": 15, "big": 2**64, "라벨": "넘어짐"}},
        {"sequence": [[0.5, -1.0], [1e-7, 3.0]], "event_type": "END"},
    ]
    for values in variants:
        by_driver = _event("cam-d", **values)
        by_sqlalchemy = _event("cam-d", **values)
        async with db.sessions.begin() as session:
            await SourceRepository(session).touch_many([("cam-d", "PROBS", NOW)], NOW)
            await EventRepository(session).insert_many([by_driver])
            params = {
                name: getattr(by_sqlalchemy, name)
                for name in ("id", "source_id", "event_type", "occurred_at", "received_at")
            }
            params |= {
                "probs": by_sqlalchemy.probs,
                "sequence": by_sqlalchemy.sequence,
                "metadata": by_sqlalchemy.meta,
                "episode_id": None,
            }
            await (await session.connection()).execute(_event_insert(), [params])
        async with db.engine.connect() as conn:
            mine = (await conn.execute(text(_STORED), {"id": by_driver.id})).one()
            theirs = (await conn.execute(text(_STORED), {"id": by_sqlalchemy.id})).one()
            assert mine == theirs
            # The id went into the repeat guard in the same statement.
            guard = await conn.execute(
                text("SELECT received_at FROM event_ids WHERE id = :id"), {"id": by_driver.id}
            )
            assert guard.scalar_one() == NOW
        # And the ORM reads back the values that went in (2**64 and Korean included).
        async with db.sessions() as session:
            read = (
                await session.execute(select(Event).where(Event.id == by_driver.id))
            ).scalar_one()
            assert (read.probs, read.sequence, read.meta) == (
                by_driver.probs,
                by_driver.sequence,
                by_driver.meta,
            )


async def test_open_episodes_read_and_saved_through_the_driver_match_the_orm(db: Database):
    episode = EpisodeState(id=uuid.uuid4(), source_id="cam-e", started_at=NOW)
    async with db.sessions.begin() as session:
        await SourceRepository(session).touch_many([("cam-e", "START", NOW)], NOW)
        episodes = EpisodeRepository(session)
        episodes.add(episode)
        await episodes.save([episode], NOW)
    async with db.sessions.begin() as session:
        await SourceRepository(session).touch_many([("cam-e", "PROBS", NOW)], NOW)
        episodes = EpisodeRepository(session)
        found = await episodes.open_for_many(["cam-e", "cam-none"])
        assert list(found) == ["cam-e"]
        loaded = found["cam-e"]
        assert (loaded.id, loaded.started_at, loaded.probs_sum) == (episode.id, NOW, {})
        loaded.event_count += 2
        loaded.probs_count += 1
        loaded.probs_sum = {"fall": 0.5, "정상": 0.5}
        loaded.probs_max = {"fall": 0.5, "정상": 0.5}
        loaded.sequence = [[1.0, 2.0]]
        await episodes.save([loaded], NOW + timedelta(seconds=1))
    async with db.sessions() as session:
        row = await EpisodeRepository(session).get(episode.id)
        assert row is not None
        assert (row.event_count, row.probs_count, row.probs_sum, row.probs_max) == (
            2,
            1,
            {"fall": 0.5, "정상": 0.5},
            {"fall": 0.5, "정상": 0.5},
        )
        assert row.sequence == [[1.0, 2.0]]
        assert row.updated_at == NOW + timedelta(seconds=1)


async def test_driver_errors_arrive_as_sqlalchemy_errors(db: Database):
    event = _event("cam-x")
    async with db.sessions.begin() as session:
        await SourceRepository(session).touch_many([("cam-x", "PROBS", NOW)], NOW)
        await EventRepository(session).insert_many([event])
    # The same id again: the repeat guard refuses it as SQLAlchemy would have.
    with pytest.raises(sa_exc.IntegrityError) as caught:
        async with db.sessions.begin() as session:
            await SourceRepository(session).touch_many([("cam-x", "PROBS", NOW)], NOW)
            await EventRepository(session).insert_many([event])
    assert isinstance(caught.value.orig, asyncpg.UniqueViolationError)
    assert caught.value.params is None  # parameters (personal data) stay out of the error
    # The session is usable afterwards: the failed transaction was rolled back.
    async with db.sessions() as session:
        assert len(await EventRepository(session).recent("cam-x", 10)) == 1


def test_driver_errors_map_to_the_classes_the_error_handlers_know():
    unique = asyncpg.UniqueViolationError("duplicate key")
    bad_value = asyncpg.InvalidTextRepresentationError("invalid input syntax")
    shutdown = asyncpg.AdminShutdownError("terminating connection")
    other = asyncpg.SerializationError("could not serialize")
    assert type(driver.as_sqlalchemy_error("S", unique)) is sa_exc.IntegrityError
    assert type(driver.as_sqlalchemy_error("S", bad_value)) is sa_exc.DataError
    assert type(driver.as_sqlalchemy_error("S", shutdown)) is sa_exc.OperationalError
    assert type(driver.as_sqlalchemy_error("S", ConnectionResetError())) is (
        sa_exc.OperationalError
    )
    assert type(driver.as_sqlalchemy_error("S", other)) is sa_exc.DBAPIError


async def test_driver_statements_refuse_to_run_outside_a_transaction(db: Database):
    # Before any statement through SQLAlchemy the driver has no transaction: each statement
    # would commit on its own, so the path refuses instead.
    async with db.sessions.begin() as session:
        with pytest.raises(RuntimeError, match="transaction"):
            await EventRepository(session).insert_many([_event("cam-t")])


async def test_a_connection_lost_under_a_driver_statement_is_invalidated(db: Database):
    """PostgreSQL ends the backend between the transaction's first statement and a driver
    statement: the caller gets SQLAlchemy's OperationalError (a 503 at the API), the
    connection is invalidated as SQLAlchemy does on a disconnect, and the next transaction
    gets a working connection from the pool."""
    with pytest.raises(sa_exc.OperationalError) as caught:
        async with db.sessions.begin() as session:
            await SourceRepository(session).touch_many([("cam-k", "PROBS", NOW)], NOW)
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with db.engine.connect() as other:
                # With a timeout it returns once the backend is gone (PostgreSQL 14+):
                # without one, the next statement could still reach the dying backend.
                ended = await other.execute(
                    text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
                )
                assert ended.scalar_one() is True
            await EventRepository(session).insert_many([_event("cam-k")])
    assert caught.value.connection_invalidated
    async with db.sessions.begin() as session:
        await SourceRepository(session).touch_many([("cam-k", "PROBS", NOW)], NOW)
        await EventRepository(session).insert_many([_event("cam-k")])
    async with db.sessions() as session:
        assert len(await EventRepository(session).recent("cam-k", 10)) == 1
