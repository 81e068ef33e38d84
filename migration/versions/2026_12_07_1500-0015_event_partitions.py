"""events: daily partitions by received_at on PostgreSQL; episodes: indexes for the list

Revision ID: 0015_event_partitions
Revises: 0014_incidents
Create Date: 2026-12-07 15:00:00

PostgreSQL only (SQLite keeps one table). The table is rebuilt as `PARTITION BY RANGE
(received_at)`: a partition per UTC day that holds rows (within 400 days of now), the days from
yesterday to a week ahead, and `events_default` for the rest; the rows are copied over and the
indexes built afterwards. The primary key becomes (id, received_at), as PostgreSQL requires the
partition key in it, so a new table `event_ids` (id primary key) refuses repeated event ids as
the old key did, for `EVENT_DEDUP_DAYS` (it starts with the ids received in the last 7 days).
On a large table this takes a while and holds the table: run it in a maintenance window.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from alembic import op
from sqlalchemy import text

revision: str = "0015_event_partitions"
down_revision: str | None = "0014_incidents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_events_episode_id": "(episode_id)",
    "ix_events_occurred_at_id": "(occurred_at, id)",
    "ix_events_received_at": "(received_at)",
    "ix_events_source_id_occurred_at": "(source_id, occurred_at)",
}
FK = (
    "ALTER TABLE events ADD CONSTRAINT fk_events_episode_id_episodes FOREIGN KEY (episode_id) "
    "REFERENCES episodes (id) ON DELETE SET NULL"
)
AHEAD_DAYS = 7
BACK_DAYS = 400


def _day(d: date) -> str:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).isoformat()


def _set_aside() -> None:
    """Rename the current table and what is named after it, out of the new one's way."""
    op.execute("ALTER TABLE events RENAME TO events_old")
    op.execute("ALTER TABLE events_old RENAME CONSTRAINT pk_events TO pk_events_old")
    op.execute(
        "ALTER TABLE events_old RENAME CONSTRAINT fk_events_episode_id_episodes "
        "TO fk_events_old_episode_id_episodes"
    )
    for name in INDEXES:
        op.execute(f"ALTER INDEX IF EXISTS {name} RENAME TO {name}_old")


def _finish(rows: str = "SELECT * FROM events_old") -> None:
    op.execute(f"INSERT INTO events {rows}")
    op.execute("DROP TABLE events_old")
    op.execute(FK)
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON events {columns}")


def upgrade() -> None:
    # Both backends: the episodes list reads newest first without sorting the table.
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.create_index("ix_episodes_started_at_id", ["started_at", "id"], unique=False)
        batch_op.create_index(
            "ix_episodes_source_id_started_at", ["source_id", "started_at"], unique=False
        )
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside()
    op.execute(
        "CREATE TABLE events (LIKE events_old INCLUDING DEFAULTS, "
        "CONSTRAINT pk_events PRIMARY KEY (id, received_at)) PARTITION BY RANGE (received_at)"
    )
    op.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")
    today = datetime.now(UTC).date()
    days = {today + timedelta(days=i) for i in range(-1, AHEAD_DAYS + 1)}
    rows = op.get_bind().execute(
        text(
            "SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date FROM events_old "
            "WHERE received_at >= :low"
        ),
        {"low": datetime.now(UTC) - timedelta(days=BACK_DAYS)},
    )
    days |= {d for (d,) in rows if d <= today + timedelta(days=AHEAD_DAYS)}
    for d in sorted(days):
        op.execute(
            f"CREATE TABLE events_p{d:%Y%m%d} PARTITION OF events "
            f"FOR VALUES FROM ('{_day(d)}') TO ('{_day(d + timedelta(days=1))}')"
        )
    _finish()
    op.execute(
        "CREATE TABLE event_ids (id uuid NOT NULL, received_at timestamptz NOT NULL, "
        "episode_id uuid, CONSTRAINT pk_event_ids PRIMARY KEY (id))"
    )
    op.execute("CREATE INDEX ix_event_ids_received_at ON event_ids (received_at)")
    op.execute(
        "INSERT INTO event_ids SELECT DISTINCT ON (id) id, received_at, episode_id FROM events "
        "WHERE received_at >= now() - interval '7 days' ORDER BY id, received_at"
    )


def downgrade() -> None:
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.drop_index("ix_episodes_source_id_started_at")
        batch_op.drop_index("ix_episodes_started_at_id")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE event_ids")
    _set_aside()
    op.execute(
        "CREATE TABLE events (LIKE events_old INCLUDING DEFAULTS, "
        "CONSTRAINT pk_events PRIMARY KEY (id))"
    )
    # One row per id (a repeat received after `EVENT_DEDUP_DAYS` has a row of its own); dropping
    # the partitioned table drops its partitions.
    _finish("SELECT DISTINCT ON (id) * FROM events_old ORDER BY id, received_at")
