"""SQL for events, sources and episodes, and the Redis recent-event lists; never commits."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.exceptions import RedisError
from sqlalchemy import (
    Table,
    Text,
    Uuid,
    any_,
    bindparam,
    case,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, defer
from sqlalchemy.sql.elements import ColumnElement

from app.core.encoding import dumps
from app.core.redis import RedisManager
from app.models.event import (
    CloseReason,
    DecidedBy,
    Episode,
    EpisodeDecision,
    EpisodeStatus,
    Event,
    Source,
)
from app.repositories import driver
from app.repositories.pagination import Page, keyset_page
from app.repositories.partitions import EVENT_IDS
from app.schemas.events import EpisodeFilter, EventFilter

# Receive-time windows `EventRepository.recent` tries before reading every partition.
RECENT_WINDOWS_DAYS = (1, 7)


@functools.cache
def _touch_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE for `sources`, built once per dialect (it is hot)."""
    # On the Core table, not the ORM entity: the ORM bulk-insert path costs more than the SQL.
    return _on_conflict_touch(_insert(dialect)(Source.__table__))


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _on_conflict_touch(stmt: Any) -> Any:
    return stmt.on_conflict_do_update(
        index_elements=[Source.__table__.c.id],
        set_={
            "last_seen": stmt.excluded.last_seen,
            "last_event_type": stmt.excluded.last_event_type,
            "last_event_at": stmt.excluded.last_event_at,
            "last_heartbeat_at": func.coalesce(
                stmt.excluded.last_heartbeat_at, Source.__table__.c.last_heartbeat_at
            ),
            "updated_at": stmt.excluded.updated_at,
        },
    )


class SourceRepository:
    """The `sources` table; the upsert also serialises writers of one source on PostgreSQL."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def touch(
        self, source_id: str, now: datetime, event_type: str, event_at: datetime
    ) -> None:
        """Insert or update `last_seen`; on PostgreSQL the row stays locked until commit."""
        await self.touch_many([(source_id, event_type, event_at)], now)

    async def touch_many(self, touches: list[tuple[str, str, datetime]], now: datetime) -> None:
        """`touch` for several sources (id, event type, event time) in one executemany.

        One cached single-row statement for any number of sources (a multi-VALUES statement was
        compiled anew for every group). The rows are upserted in the order given; callers pass
        them sorted by id, so two transactions always lock source rows in the same order (no
        deadlocks).
        """
        if not touches:
            return
        dialect = self.session.get_bind().dialect.name
        # On the session's connection: Core statements skip the ORM's execute path there.
        conn = await self.session.connection()
        rows = [
            {
                "id": source_id,
                "first_seen": now,
                "last_seen": now,
                "last_event_type": event_type,
                "last_event_at": event_at,
                "last_heartbeat_at": now if event_type == "HEARTBEAT" else None,
                "created_at": now,
                "updated_at": now,
            }
            for source_id, event_type, event_at in touches
        ]
        if dialect == "postgresql":
            # Through SQLAlchemy (it begins the transaction the driver statements after it
            # join) but as driver SQL: no per-row parameter processing.
            statement = _pg(_touch_statement, dialect)
            await conn.exec_driver_sql(statement.text, [statement.args(row) for row in rows])
        else:
            await conn.execute(_touch_statement(dialect), rows)

    async def list(self) -> list[Source]:
        result = await self.session.execute(select(Source).order_by(Source.id))
        return list(result.scalars())


@dataclass(slots=True)
class NewEvent:
    """An event row to insert: the attributes of `Event`, without the ORM's per-object cost."""

    id: uuid.UUID
    source_id: str
    event_type: str
    occurred_at: datetime
    received_at: datetime
    probs: dict[str, float] | None
    sequence: list[Any] | None
    meta: dict[str, Any] | None
    episode_id: uuid.UUID | None


@dataclass(slots=True)
class EpisodeState:
    """An episode as the ingest path works on it: a plain copy of its row, read by
    `EpisodeRepository.open_for…` and written back by `EpisodeRepository.save`.

    Not the ORM `Episode`: building and change-tracking ORM objects cost more per event than the
    SQL itself. Field names are the `episodes` columns.
    """

    id: uuid.UUID
    source_id: str
    started_at: datetime
    status: EpisodeStatus = EpisodeStatus.open
    ended_at: datetime | None = None
    close_reason: CloseReason | None = None
    event_count: int = 0
    probs_count: int = 0
    probs_sum: dict[str, float] = field(default_factory=dict)
    probs_max: dict[str, float] = field(default_factory=dict)
    out_of_order: int = 0
    sequence: list[Any] | None = None
    decision: EpisodeDecision | None = None
    decided_by: DecidedBy | None = None
    anomaly_score: float | None = None
    threshold: float | None = None
    top_label: str | None = None
    scores: dict[str, float] | None = None
    model_version: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@functools.cache
def _event_insert() -> Any:
    return insert(cast(Table, Event.__table__))


# PostgreSQL: a group's events in one statement, one array per column. The id goes into
# `event_ids` in the same statement, so a repeat (or a twin from another process, which waits
# for this transaction) is refused before the statement writes anything. JSON values arrive
# encoded, as SQLAlchemy's JSON type encodes them (None as JSON `null`).
_EVENT_COLUMNS = (
    "id, source_id, event_type, occurred_at, received_at, probs, sequence, metadata, episode_id"
)
# Built from constants only (column names), never from input.
_EVENTS_INSERT_PG = f"""
WITH new AS (
    SELECT * FROM unnest(
        $1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
        $6::json[], $7::json[], $8::json[], $9::uuid[]
    ) AS t({_EVENT_COLUMNS})
), ids AS (
    INSERT INTO event_ids (id, received_at, episode_id)
    SELECT id, received_at, episode_id FROM new
)
INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM new
"""  # noqa: S608


def _event_row(e: NewEvent) -> tuple[Any, ...]:
    return (
        e.id,
        e.source_id,
        e.event_type,
        e.occurred_at,
        e.received_at,
        dumps(e.probs),
        dumps(e.sequence),
        dumps(e.meta),
        e.episode_id,
    )


# The ingest path's queries, built once: constructing a statement costs more than running it
# from SQLAlchemy's compiled cache.
def _in_list(column: Any, name: str, dialect: str, item_type: Any) -> ColumnElement[bool]:
    """`column` is one of the list parameter `name`. PostgreSQL: `= ANY(:name)`, one array
    parameter, so the SQL text is the same for any number of items (SQLAlchemy renders an
    expanding IN anew for every call, and asyncpg prepares each length as a new statement).
    Elsewhere an expanding IN."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(item_type)))
    return cast(ColumnElement[bool], column.in_(bindparam(name, expanding=True)))


@functools.cache
def _existing_statement(dialect: str) -> Any:
    # PostgreSQL: the ids table answers with one primary-key probe, where `events` would
    # search every daily partition (its key is (id, received_at)).
    table: Any = EVENT_IDS if dialect == "postgresql" else Event.__table__
    return select(table.c.id, table.c.episode_id).where(
        _in_list(table.c.id, "ids", dialect, Uuid())
    )


_STATE_FIELDS = tuple(f.name for f in fields(EpisodeState))


def _episodes() -> Table:
    return cast(Table, Episode.__table__)


@functools.cache
def _open_episodes_statement(dialect: str) -> Any:
    table = _episodes()
    stored = table.c.sequence
    # Every event of a source reads its open episode back: frames stored past the byte cap
    # (by a version without one) are not read (no decoding megabytes per event); the episode
    # then goes on as if it had none, and its next frames replace them.
    sequence = case(
        (func.length(sql_cast(stored, Text)) <= bindparam("max_sequence_chars"), stored),
        else_=null(),
    ).label("sequence")
    columns = [column for column in table.c if column.name != "sequence"]
    return (
        select(*columns, sequence)
        .where(
            _in_list(table.c.source_id, "ids", dialect, Text()),
            table.c.status == EpisodeStatus.open,
        )
        .order_by(table.c.started_at)
    )


# What an event can change on an episode; a close also writes the decision. `sequence` goes
# separately: it can be large, and most events (PROBS without frames) leave it as it was.
_PROGRESS = ("event_count", "probs_count", "probs_sum", "probs_max", "out_of_order", "updated_at")
_DECISION = (
    "status",
    "ended_at",
    "close_reason",
    "decision",
    "decided_by",
    "anomaly_score",
    "threshold",
    "top_label",
    "scores",
    "model_version",
)


@functools.cache
def _episode_update(columns: tuple[str, ...]) -> Any:
    table = _episodes()
    return (
        update(table)
        .where(table.c.id == bindparam("episode_id"))
        .values({name: bindparam(name) for name in columns})
    )


@functools.cache
def _episode_insert() -> Any:
    return insert(_episodes())


# The ingest's statements for the driver (see `app.repositories.driver`), from the same
# SQLAlchemy definitions.
@functools.cache
def _pg(statement: Callable[..., Any], *args: Any) -> driver.DriverStatement:
    return driver.DriverStatement.of(statement(*args))


async def sequence_lengths(
    session: AsyncSession,
    column: InstrumentedAttribute[Any],
    ids: list[uuid.UUID],
    *where: ColumnElement[bool],
) -> dict[uuid.UUID, int]:
    """Frames in the `sequence` JSON of each row of `ids` (rows without one are left out),
    counted by the database: readers never load and decode the frames themselves. `where`
    narrows the search (the events' receive times: their partitions)."""
    if not ids:
        return {}
    table = column.class_
    if session.get_bind().dialect.name == "postgresql":
        is_array = func.json_typeof(column) == "array"
    else:
        is_array = func.json_type(column) == "array"
    length = case((is_array, func.json_array_length(column)), else_=None)
    stmt = select(table.id, length).where(table.id.in_(ids), *where)
    return {row[0]: row[1] for row in await session.execute(stmt) if row[1]}


class EventRepository:
    """The `events` table. Readers get rows with `sequence` deferred (never loaded: it can
    hold many frames); `sequence_lengths` counts them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sequence_lengths(self, rows: list[Event]) -> dict[uuid.UUID, int]:
        """`sequence_lengths` of these events, looked up only within their receive times: on
        PostgreSQL a lookup by id alone would search every daily partition."""
        if not rows:
            return {}
        received = [row.received_at for row in rows]
        return await sequence_lengths(
            self.session,
            Event.sequence,
            [row.id for row in rows],
            Event.received_at.between(min(received), max(received)),
        )

    async def existing(self, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID | None]:
        """Stored ids among `event_ids` → their episode id (for idempotent ingest)."""
        if not event_ids:
            return {}
        conn = await self.session.connection()
        rows = await conn.execute(
            _existing_statement(conn.dialect.name), {"ids": list(set(event_ids))}
        )
        return {row.id: row.episode_id for row in rows}

    async def insert_many(self, events: list[NewEvent]) -> None:
        """One executemany on the Core table: a cached statement, no unit-of-work bookkeeping
        (ORM objects cost more per event than the INSERT itself). Flush pending episodes first:
        events reference them."""
        if not events:
            return
        conn = await self.session.connection()
        if conn.dialect.name == "postgresql":
            await driver.run(
                self.session,
                _EVENTS_INSERT_PG,
                *map(list, zip(*(_event_row(e) for e in events), strict=True)),
            )
            return
        await conn.execute(
            _event_insert(),
            [
                {
                    "id": e.id,
                    "source_id": e.source_id,
                    "event_type": e.event_type,
                    "occurred_at": e.occurred_at,
                    "received_at": e.received_at,
                    "probs": e.probs,
                    "sequence": e.sequence,
                    "metadata": e.meta,
                    "episode_id": e.episode_id,
                }
                for e in events
            ],
        )

    async def page(self, filters: EventFilter, *, limit: int, cursor: str | None) -> Page[Event]:
        """Events newest first by their timestamp, filtered, after `cursor` (`sequence` deferred)."""
        stmt = select(Event).options(defer(Event.sequence, raiseload=True))
        if filters.source_id:
            stmt = stmt.where(Event.source_id == filters.source_id)
        if filters.event_type:
            stmt = stmt.where(Event.event_type == filters.event_type)
        if filters.since is not None:
            stmt = stmt.where(Event.occurred_at >= filters.since)
        if filters.until is not None:
            stmt = stmt.where(Event.occurred_at < filters.until)
        if filters.episode_id is not None:
            stmt = stmt.where(Event.episode_id == filters.episode_id)
        return await keyset_page(
            self.session, stmt, at=Event.occurred_at, row_id=Event.id, limit=limit, cursor=cursor
        )

    async def recent(
        self, source_id: str | None, limit: int, now: datetime | None = None
    ) -> list[Event]:
        """The newest `limit` events by receive time. On PostgreSQL the last day is asked
        first, then the last week, then everything: a bound on the partition key keeps the
        query to a few daily partitions, and a window that holds `limit` rows holds the
        newest ones, so the answer is the same."""
        stmt = select(Event).options(defer(Event.sequence, raiseload=True))
        if source_id:
            stmt = stmt.where(Event.source_id == source_id)
        stmt = stmt.order_by(Event.received_at.desc(), Event.id.desc()).limit(limit)
        if (await self.session.connection()).dialect.name == "postgresql":
            now = now or datetime.now(UTC)
            for days in RECENT_WINDOWS_DAYS:
                bounded = stmt.where(Event.received_at >= now - timedelta(days=days))
                rows = list((await self.session.execute(bounded)).scalars())
                if len(rows) >= limit:
                    return rows
        return list((await self.session.execute(stmt)).scalars())


class EpisodeRepository:
    """The `episodes` table.

    The ingest path reads open episodes as `EpisodeState` copies and writes them back with `save`
    (Core executemany); other readers get ORM rows.
    """

    def __init__(self, session: AsyncSession, max_sequence_bytes: int = 262_144) -> None:
        self.session = session
        # Stored frames longer than this as JSON text are not read back on ingest (see
        # `_open_episodes_statement`); twice the cap, so frames stored under it always are.
        self.max_sequence_chars = 2 * max_sequence_bytes
        self._new: set[uuid.UUID] = set()
        # The sequence each loaded episode had, by identity: the tracker assigns a new list when
        # it changes one, so `save` writes the column only then.
        self._loaded_sequences: dict[uuid.UUID, Any] = {}

    async def _load_open(self, source_ids: list[str]) -> list[EpisodeState]:
        conn = await self.session.connection()
        if conn.dialect.name == "postgresql":
            statement = _pg(_open_episodes_statement, "postgresql")
            rows = await driver.fetch(
                self.session,
                statement.text,
                *statement.args({"ids": source_ids, "max_sequence_chars": self.max_sequence_chars}),
            )
            episodes = [EpisodeState(**row) for row in rows]
        else:
            result = await conn.execute(
                _open_episodes_statement("sqlite"),
                {"ids": source_ids, "max_sequence_chars": self.max_sequence_chars},
            )
            episodes = [EpisodeState(**row) for row in result.mappings()]
        for episode in episodes:
            episode.status = EpisodeStatus.open  # the row's text; the query picked open ones
            self._loaded_sequences[episode.id] = episode.sequence
        return episodes

    async def open_for(self, source_id: str) -> EpisodeState | None:
        """The source's newest open episode (a working copy; see `save`), or None."""
        found = await self._load_open([source_id])
        return found[-1] if found else None

    async def open_for_many(self, source_ids: list[str]) -> dict[str, EpisodeState]:
        """The newest open episode of each source that has one (one query for a group)."""
        if not source_ids:
            return {}
        # Oldest first, so the newest open episode of a source wins (as `open_for` picks it).
        return {row.source_id: row for row in await self._load_open(source_ids)}

    def add(self, episode: EpisodeState) -> None:
        """A new episode, inserted by the next `save`."""
        self._new.add(episode.id)

    async def save(self, episodes: list[EpisodeState], now: datetime) -> None:
        """Write `episodes` (new ones from `add`, or loaded by `open_for…`): INSERT the new,
        UPDATE the others' counters, aggregates and, for closed ones, the decision. One
        executemany per statement shape."""
        inserts: list[dict[str, Any]] = []
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for episode in episodes:
            episode.updated_at = now
            if episode.id in self._new:
                if episode.created_at is None:
                    episode.created_at = now
                inserts.append({name: getattr(episode, name) for name in _STATE_FIELDS})
                continue
            columns: tuple[str, ...] = _PROGRESS
            if episode.status != EpisodeStatus.open:
                columns += _DECISION
            if episode.sequence is not self._loaded_sequences.get(episode.id):
                columns += ("sequence",)
            params = {name: getattr(episode, name) for name in columns}
            params["episode_id"] = episode.id
            updates.setdefault(columns, []).append(params)
        if not inserts and not updates:
            return
        conn = await self.session.connection()
        if inserts:
            await conn.execute(_episode_insert(), inserts)
        postgresql = conn.dialect.name == "postgresql"
        for columns, rows in updates.items():
            if postgresql:
                statement = _pg(_episode_update, columns)
                await driver.run_many(
                    self.session, statement.text, [statement.args(row) for row in rows]
                )
            else:
                await conn.execute(_episode_update(columns), rows)

    async def get(self, episode_id: uuid.UUID) -> Episode | None:
        return await self.session.get(Episode, episode_id)

    async def get_summary(self, episode_id: uuid.UUID) -> Episode | None:
        """The episode without its frames (`sequence` deferred; see `sequence_lengths`)."""
        stmt = (
            select(Episode)
            .options(defer(Episode.sequence, raiseload=True))
            .where(Episode.id == episode_id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def closed_ids(self) -> list[uuid.UUID]:
        """Every closed episode's id, oldest first (the event index is rebuilt from these)."""
        stmt = (
            select(Episode.id)
            .where(Episode.status == EpisodeStatus.closed)
            .order_by(Episode.started_at, Episode.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def get_many(self, episode_ids: list[uuid.UUID]) -> list[Episode]:
        if not episode_ids:
            return []
        # Summaries never need the frames: they are not read (see `sequence_lengths`).
        stmt = (
            select(Episode)
            .options(defer(Episode.sequence, raiseload=True))
            .where(Episode.id.in_(episode_ids))
        )
        return list((await self.session.execute(stmt)).scalars())

    async def page(
        self, filters: EpisodeFilter, *, limit: int, cursor: str | None
    ) -> Page[Episode]:
        """Episodes newest first by their start, filtered, after `cursor`; `sequence` is
        deferred (the console polls this list: stored frames must not be read for it)."""
        stmt = select(Episode).options(defer(Episode.sequence, raiseload=True))
        if filters.source_id:
            stmt = stmt.where(Episode.source_id == filters.source_id)
        if filters.status:
            stmt = stmt.where(Episode.status == filters.status)
        if filters.decision:
            stmt = stmt.where(Episode.decision == filters.decision)
        return await keyset_page(
            self.session,
            stmt,
            at=Episode.started_at,
            row_id=Episode.id,
            limit=limit,
            cursor=cursor,
        )


# KEYS: the lists; ARGV: the cap, the slack, then per list its count and its values, oldest
# first (LPUSH a b c leaves c first: newest first). A list is trimmed back to the cap only once
# it grew a slack past it: one command per list per push, and reads never see past the cap.
_PUSH_SCRIPT = """
local cap = tonumber(ARGV[1])
local limit = cap + tonumber(ARGV[2])
local n = 3
for _, key in ipairs(KEYS) do
  local count = tonumber(ARGV[n])
  local length = 0
  for first = n + 1, n + count, 1000 do
    length = redis.call('LPUSH', key, unpack(ARGV, first, math.min(first + 999, n + count)))
  end
  if length > limit then
    redis.call('LTRIM', key, 0, cap - 1)
  end
  n = n + 1 + count
end
return #KEYS
"""


class RecentEventCache:
    """Capped Redis lists of recent events (overall and per source), newest first.

    Every method returns `None` when Redis is off or fails, so callers fall back to the database.
    """

    def __init__(self, redis: RedisManager, max_items: int) -> None:
        self.redis = redis
        self.max_items = max_items
        self._slack = max(8, max_items // 10)
        self._script: tuple[Any, Any] | None = None  # (client, its registered push script)

    def _keys(self, source_id: str | None) -> str:
        if source_id is None:
            return self.redis.key("events", "recent", "all")
        return self.redis.key("events", "recent", "source", source_id)

    async def push(self, events: list[dict[str, Any]]) -> bool:
        return await self.push_encoded(
            [(item["source_id"], json.dumps(item, separators=(",", ":"))) for item in events]
        )

    async def push_encoded(self, events: list[tuple[str, str]]) -> bool:
        """Push (source id, event JSON) pairs, oldest first: one script call for every list
        (a pipeline of one LPUSH per list cost twice as much client CPU, all of it parsing
        and packing commands)."""
        client = self.redis.client()
        if client is None or not events:
            return False
        try:
            lists: dict[str, list[str]] = {self._keys(None): []}
            for source_id, data in events:
                lists[self._keys(None)].append(data)
                lists.setdefault(self._keys(source_id), []).append(data)
            args: list[str | int] = [self.max_items, self._slack]
            for values in lists.values():
                args.append(len(values))
                args.extend(values)
            if self._script is None or self._script[0] is not client:
                self._script = (client, client.register_script(_PUSH_SCRIPT))
            await self._script[1](keys=list(lists), args=args)
        except (RedisError, OSError) as exc:
            self.redis.mark_down(exc)
            return False
        return True

    async def read(self, source_id: str | None, limit: int) -> list[dict[str, Any]] | None:
        client = self.redis.client()
        if client is None:
            return None
        try:
            raw = await client.lrange(self._keys(source_id), 0, min(limit, self.max_items) - 1)
        except (RedisError, OSError) as exc:
            self.redis.mark_down(exc)
            return None
        if not raw:
            return None  # empty or evicted: the database knows better
        return [json.loads(item) for item in raw]
