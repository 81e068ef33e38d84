"""Daily partitions of the `events` table on PostgreSQL (declarative range partitioning).

On PostgreSQL `events` is partitioned by `received_at` (the server's clock: agent clocks may be
wrong, and retention already goes by it), one partition per UTC day named `events_pYYYYMMDD`,
plus `events_default` for rows no daily partition covers (a day nobody created ahead, say after
a long outage). The app creates partitions ahead of time (`EventPartitionService`); creating one
moves the default partition's rows of that day into it, so nothing is stuck there. Retention
drops whole days instead of deleting their rows. SQLite has no partitions; nothing here runs
on it.

A partitioned table's primary key must hold the partition key, so `events`' is (id, received_at)
and cannot refuse a repeated `event_id` received later. `event_ids` (id primary key,
received_at, episode_id), one narrow unpartitioned table written in the same transaction, does:
it refuses repeats (and twins racing in from another process) as the old key did, and answers
the ingest lookup with one probe. It keeps `EVENT_DEDUP_DAYS` of ids; older ones are pruned
hourly, so a repeat arriving later than that is stored again.

Migration 0015 writes its own SQL on purpose: a migration stays as it was written while this
module changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Column, Index, MetaData, Table, Uuid, delete, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.base import UTCDateTime

PARENT = "events"
DEFAULT = "events_default"
PREFIX = "events_p"
_NAME = re.compile(r"^events_p(\d{8})$")
# Serialises partition changes between processes (any constant both sides agree on).
ADVISORY_LOCK = 0x5E17_0001


# Not an ORM model (its own MetaData): PostgreSQL only, created by migration 0015, invisible
# to Alembic's comparison and to SQLite.
EVENT_IDS = Table(
    "event_ids",
    MetaData(),
    Column("id", Uuid(), primary_key=True),
    Column("received_at", UTCDateTime(timezone=True), nullable=False),
    Column("episode_id", Uuid(), nullable=True),
    Index("ix_event_ids_received_at", "received_at"),
)


def is_event_partition(name: str) -> bool:
    """Tables Alembic leaves to the app: the partitions of `events` (a day's or the default)
    and `event_ids`."""
    return name in (DEFAULT, EVENT_IDS.name) or _NAME.match(name) is not None


def partition_name(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def day_of(name: str) -> date | None:
    """The day a partition holds, from its name; None for anything else (the default)."""
    match = _NAME.match(name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%d").date()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def create_statements(day: date) -> list[str]:
    """Statements that add the partition of `day`, moving its rows out of the default one.

    Built as a table first, then attached: attaching checks that the default partition holds
    no row of the day, so the rows are moved in the same transaction just before. Indexes come
    from the parent's (attach creates or adopts them)."""
    name = partition_name(day)
    lower = day_start(day).isoformat()
    upper = day_start(day + timedelta(days=1)).isoformat()
    return [
        f"CREATE TABLE IF NOT EXISTS {name} "
        f"(LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
        # Names and bounds are made from a date, never from input.
        f"WITH moved AS (DELETE FROM {DEFAULT} WHERE received_at >= '{lower}' "  # noqa: S608
        f"AND received_at < '{upper}' RETURNING *) INSERT INTO {name} SELECT * FROM moved",
        f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ('{lower}') TO ('{upper}')",
    ]


@dataclass(frozen=True, slots=True)
class PartitionRows:
    """How many rows a partition holds, heartbeats apart."""

    heartbeats: int
    others: int


class EventPartitions:
    """Lists, creates, counts and drops the daily partitions of `events` (PostgreSQL only)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def lock(self) -> None:
        """Wait for any other process changing partitions; held until this transaction ends."""
        await self.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK})

    async def is_partitioned(self) -> bool:
        row = await self.conn.execute(
            text(
                "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.relname = :parent AND c.relnamespace = to_regnamespace(current_schema())"
            ),
            {"parent": PARENT},
        )
        return row.first() is not None

    async def days(self) -> list[date]:
        """The days that have a partition, oldest first."""
        rows = await self.conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent "
                "AND p.relnamespace = to_regnamespace(current_schema())"
            ),
            {"parent": PARENT},
        )
        return sorted(d for (name,) in rows if (d := day_of(name)) is not None)

    async def create(self, day: date) -> None:
        """Add `day`'s partition (call `lock` first in the same transaction)."""
        for statement in create_statements(day):
            await self.conn.execute(text(statement))

    async def rows(self, day: date) -> PartitionRows:
        row = (
            await self.conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE event_type = 'HEARTBEAT'), "  # noqa: S608
                    "count(*) FILTER (WHERE event_type <> 'HEARTBEAT') "
                    f"FROM {partition_name(day)}"
                )
            )
        ).one()
        return PartitionRows(heartbeats=int(row[0]), others=int(row[1]))

    async def prune_ids(self, before: datetime) -> int:
        """Forget the ids of events received before `before` (the dedup window's start)."""
        result = await self.conn.execute(delete(EVENT_IDS).where(EVENT_IDS.c.received_at < before))
        return int(getattr(result, "rowcount", 0) or 0)

    async def drop(self, day: date) -> None:
        """Drop `day`'s partition with its rows. Waits at most a few seconds for the parent's
        lock (an insert in flight holds it briefly); past that it raises and the next run
        tries again, instead of holding up ingest behind it."""
        await self.conn.execute(text("SET LOCAL lock_timeout = '5s'"))
        await self.conn.execute(text(f"DROP TABLE IF EXISTS {partition_name(day)}"))
