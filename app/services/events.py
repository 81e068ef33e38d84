"""Event ingest and reading: durable commit before the 202, episodes, the alert outbox, sources."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from sqlalchemy.exc import IntegrityError

from app.core.database import Database
from app.core.encoding import dumps, json_size
from app.core.errors import NotFound, ValidationFailed
from app.core.metrics import ALERTS, EVENTS_INGESTED
from app.core.settings import EventSettings
from app.models.alert import Alert
from app.models.base import utcnow
from app.models.event import Episode, EpisodeDecision, Event
from app.models.learning import EpisodeLabel
from app.repositories.alerts import AlertRepository
from app.repositories.events import (
    EpisodeRepository,
    EpisodeState,
    EventRepository,
    NewEvent,
    RecentEventCache,
    SourceRepository,
    sequence_lengths,
)
from app.repositories.learning import LabelRepository
from app.repositories.pagination import Page
from app.schemas.events import (
    EpisodeDetail,
    EpisodeFilter,
    EpisodeOut,
    EventFilter,
    EventIn,
    EventOut,
    EventType,
    SourceOut,
)
from app.services.alerts import AlertDispatcher, AlertService
from app.services.episode_feedback import feedback_of, outcome_of
from app.services.episodes import EpisodeTracker
from app.services.event_knowledge import EventKnowledgeIndexer
from app.services.event_log import EventLog
from app.services.stream import EventStream


@dataclass(frozen=True)
class IngestResult:
    """What happened to one event."""

    id: uuid.UUID
    episode_id: uuid.UUID | None
    duplicate: bool


@dataclass(frozen=True, slots=True)
class EventView:
    """A stored event as readers see it; `record()` is its JSON shape (recent cache, JSONL log,
    live stream), `from_record` reads that shape back."""

    id: uuid.UUID
    source_id: str
    event_type: str
    timestamp: datetime
    received_at: datetime
    probs: dict[str, float] | None
    metadata: dict[str, Any] | None
    sequence_length: int | None
    episode_id: uuid.UUID | None

    @classmethod
    def of(cls, event: Event | NewEvent, sequence_length: int | None = None) -> EventView:
        """A new event (its frames at hand), or a stored row read with `sequence` deferred
        and its frame count passed as `sequence_length`."""
        if isinstance(event, NewEvent) and event.sequence:
            sequence_length = len(event.sequence)
        return cls(
            id=event.id,
            source_id=event.source_id,
            event_type=event.event_type,
            timestamp=event.occurred_at.astimezone(UTC),
            received_at=event.received_at.astimezone(UTC),
            probs=event.probs,
            metadata=event.meta,
            sequence_length=sequence_length,
            episode_id=event.episode_id,
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EventView:
        episode_id = record.get("episode_id")
        return cls(
            id=uuid.UUID(record["id"]),
            source_id=record["source_id"],
            event_type=record["event_type"],
            timestamp=datetime.fromisoformat(record["timestamp"]),
            received_at=datetime.fromisoformat(record["received_at"]),
            probs=record.get("probs"),
            metadata=record.get("metadata"),
            sequence_length=record.get("sequence_length"),
            episode_id=uuid.UUID(episode_id) if episode_id else None,
        )

    def record(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "source_id": self.source_id,
            "event_type": self.event_type,
            "timestamp": self.timestamp.isoformat(),
            "received_at": self.received_at.isoformat(),
            "probs": self.probs,
            "metadata": self.metadata,
            "sequence_length": self.sequence_length,
            "episode_id": str(self.episode_id) if self.episode_id else None,
        }


def event_record(event: Event | NewEvent) -> dict[str, Any]:
    """The JSON shape used by the recent cache, the JSONL log and the stream."""
    return EventView.of(event).record()


def episode_out(
    episode: Episode,
    alert: Alert | None,
    label: EpisodeLabel | None = None,
    normal: frozenset[str] = frozenset(),
    sequence_length: int | None = None,
) -> EpisodeOut:
    """An episode as readers see it: its own columns (by `EpisodeOut`'s field names), the
    alert it raised, and an operator's label with what it says about the verdict."""
    return EpisodeOut.model_validate(episode).model_copy(
        update={
            "sequence_length": sequence_length,
            "alert_id": alert.id if alert else None,
            "alert_status": alert.status if alert else None,
            "feedback": feedback_of(label) if label else None,
            "feedback_outcome": outcome_of(episode.decision, label.label, normal)
            if label
            else None,
        }
    )


def episode_record(episode: EpisodeState) -> dict[str, Any]:
    return {
        "id": str(episode.id),
        "source_id": episode.source_id,
        "close_reason": episode.close_reason,
        "decision": episode.decision,
        "decided_by": episode.decided_by,
        "anomaly_score": episode.anomaly_score,
        "top_label": episode.top_label,
        # UTC like event_record: the in-memory row still carries the client's offset.
        "started_at": episode.started_at.astimezone(UTC).isoformat(),
        "ended_at": episode.ended_at.astimezone(UTC).isoformat() if episode.ended_at else None,
    }


# After a repeated id, this many groups in a row without one before the lookup is dropped again.
LOOKUP_GROUPS = 64


class EventService:
    """Business rules for events; owns the ingest transaction."""

    def __init__(
        self,
        database: Database,
        settings: EventSettings,
        max_sequence_length: int,
        tracker: EpisodeTracker,
        alerts: AlertService,
        dispatcher: AlertDispatcher,
        recent: RecentEventCache,
        event_log: EventLog,
        stream: EventStream,
        event_index: EventKnowledgeIndexer | None = None,
    ) -> None:
        self.db = database
        self.settings = settings
        self.max_sequence_length = max_sequence_length
        self.tracker = tracker
        self.alerts = alerts
        self.dispatcher = dispatcher
        self.recent_cache = recent
        self.event_log = event_log
        self.stream = stream
        self.event_index = event_index
        self._queue: list[tuple[EventIn, asyncio.Future[IngestResult]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        # Groups left to write with the duplicate lookup: set when repeats show up (agents
        # retrying), counted down by groups that had none. Zero: all-new traffic, no lookup.
        self._lookup_groups = 0

    # -- validation that needs settings ------------------------------------------------------

    def _check(self, event: EventIn, where: str) -> None:
        if event.metadata is not None:
            size = json_size(event.metadata)
            if size > self.settings.metadata_max_bytes:
                raise ValidationFailed(
                    f"{where}metadata is {size} bytes as JSON; at most "
                    f"{self.settings.metadata_max_bytes} are accepted (EVENT_METADATA_MAX_BYTES)"
                )
        if event.sequence is not None and len(event.sequence) > self.max_sequence_length:
            raise ValidationFailed(
                f"{where}sequence has {len(event.sequence)} frames; at most "
                f"{self.max_sequence_length} are accepted (MAX_SEQUENCE_LENGTH)"
            )
        # Frames are rectangular (the schema checks), so frame 0 gives the width of all.
        if event.sequence and len(event.sequence[0]) > self.settings.sequence_max_features:
            raise ValidationFailed(
                f"{where}sequence frames have {len(event.sequence[0])} features; at most "
                f"{self.settings.sequence_max_features} are accepted (EVENT_SEQUENCE_MAX_FEATURES)"
            )

    # -- ingest ------------------------------------------------------------------------------

    async def ingest(self, event: EventIn) -> IngestResult:
        """Store one event; concurrent calls share one transaction (group commit).

        Each caller still gets its answer only after the commit that holds its event. While a
        group is being written, new events queue up and form the next group, so under load one
        commit carries many events and with no load nothing waits.
        """
        self._check(event, "")
        if self.settings.ingest_group_max <= 1:
            return await self._ingest_one(event)
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._queue.append((event, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="event-group-commit")
        return await future

    async def _write_groups(self) -> None:
        # Up to two groups in flight on PostgreSQL: the next group starts once the previous one
        # has run every statement but its COMMIT, so its commit (a WAL flush) and Redis round
        # trip overlap the next group's work instead of leaving the loop idle. Groups stay in
        # order for each source: the next group's upsert of a source waits for the previous
        # group's row lock, i.e. for its commit. SQLite has one writer: one group at a time.
        limit = 1 if self.db.dialect == "sqlite" else 2
        while self._queue:
            size = self.settings.ingest_group_max
            group, self._queue = self._queue[:size], self._queue[size:]
            ready = asyncio.Event()
            task = asyncio.create_task(self._write_group(group, ready), name="event-group")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            await ready.wait()
            while len(self._in_flight) >= limit:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)

    async def _write_group(
        self, group: list[tuple[EventIn, asyncio.Future[IngestResult]]], ready: asyncio.Event
    ) -> None:
        events = [event for event, _ in group]
        lookup = self._lookup_groups > 0
        try:
            # While agents retry, one lookup per group answers repeated ids with the original
            # and skips them, at about the cost of a new event. Otherwise no lookup: the
            # primary key refuses a repeat, and the group is written again with the lookup.
            try:
                results = await self._ingest(events, check_duplicates=lookup, ready=ready)
            except IntegrityError:
                # A repeat (or a twin committed by another process between the lookup and the
                # insert): the transaction rolled back; look up from now on, and again.
                self._lookup_groups = LOOKUP_GROUPS
                results = await self._ingest(events, ready=ready)
            else:
                if lookup and any(r.duplicate for r in results):
                    self._lookup_groups = LOOKUP_GROUPS
                elif lookup:
                    self._lookup_groups = max(0, self._lookup_groups - 1)
        except Exception as exc:
            logger.warning(
                "group of {} events failed ({}); writing them one by one",
                len(group),
                type(exc).__name__,
            )
            # One bad apple (or a duplicate racing in from another process) must not fail the
            # others: write them one by one so each gets its own answer.
            for event, future in group:
                try:
                    result = await self._ingest_one(event)
                except Exception as exc:
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
            return
        finally:
            ready.set()
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():  # the caller may have gone away; the event is stored
                future.set_result(result)

    async def _ingest_one(self, event: EventIn) -> IngestResult:
        try:
            # Fast path: no duplicate lookup; the primary key rejects a repeated event_id.
            return (await self._ingest([event], check_duplicates=False))[0]
        except IntegrityError:
            if event.event_id is None:
                raise
            # A repeat (or a concurrent twin): the transaction rolled back; answer with the
            # original, exactly as the lookup path would.
            return (await self._ingest([event]))[0]

    async def ingest_batch(self, events: list[EventIn]) -> list[IngestResult]:
        if len(events) > self.settings.batch_max:
            raise ValidationFailed(
                f"batch has {len(events)} events; at most {self.settings.batch_max} are accepted "
                "(EVENT_BATCH_MAX); split it into smaller batches"
            )
        for index, event in enumerate(events):
            self._check(event, f"events.{index}: ")
        try:
            return await self._ingest(events)
        except IntegrityError:
            # A twin committed between the lookup and the insert (see `_write_group`): once
            # more, and the lookup now sees it.
            return await self._ingest(events)

    async def _ingest(
        self,
        events: list[EventIn],
        check_duplicates: bool = True,
        ready: asyncio.Event | None = None,
    ) -> list[IngestResult]:
        """Write `events` in one transaction; `ready` is set once only its COMMIT is left."""
        now = utcnow()
        results: list[IngestResult] = []
        stored: list[NewEvent] = []
        closed: list[EpisodeState] = []
        created_alerts: list[Alert] = []
        # Episodes this group changed, by id, in first-touched order (written once at the end).
        touched: dict[uuid.UUID, EpisodeState] = {}
        async with self.db.sessions.begin() as session:
            # Rows are written in one flush at commit; reads below never need pending rows.
            session.autoflush = False
            sources = SourceRepository(session)
            repo = EventRepository(session)
            episodes = EpisodeRepository(session, self.tracker.max_bytes)
            alert_repo = AlertRepository(session)
            # Touch every source first, in a fixed order: this is the first write (SQLite takes
            # its write lock here) and, on PostgreSQL, locks each source row so events of one
            # source are applied one transaction at a time, without deadlocks between batches.
            latest: dict[str, EventIn] = {}
            for event in events:
                latest[event.source_id] = event
            await sources.touch_many(
                [
                    (source_id, latest[source_id].event_type.value, latest[source_id].timestamp)
                    for source_id in sorted(latest)
                ],
                now,
            )

            # Duplicates: one query for the batch, plus repeats inside the batch itself.
            # Heartbeats that are not stored never look anything up (nothing to repeat).
            skip_heartbeats = not self.settings.store_heartbeats
            known = (
                await repo.existing(
                    [
                        e.event_id
                        for e in events
                        if e.event_id is not None
                        and not (skip_heartbeats and e.event_type == EventType.HEARTBEAT)
                    ]
                )
                if check_duplicates
                else {}
            )
            # Open episodes of every source that has episode events: one query.
            episode_sources = sorted(
                {e.source_id for e in events if e.event_type != EventType.HEARTBEAT}
            )
            found = await episodes.open_for_many(episode_sources)
            open_by_source: dict[str, EpisodeState | None] = {
                source_id: found.get(source_id) for source_id in episode_sources
            }
            for event in events:
                event_id = event.event_id or uuid.uuid4()
                if event.event_type == EventType.HEARTBEAT and not self.settings.store_heartbeats:
                    results.append(IngestResult(event_id, None, False))
                    continue
                if event_id in known:
                    results.append(IngestResult(event_id, known[event_id], True))
                    continue
                if event.source_id not in open_by_source:  # a stored heartbeat
                    open_by_source[event.source_id] = await episodes.open_for(event.source_id)
                transition = await self.tracker.apply(
                    episodes,
                    open_by_source[event.source_id],
                    source_id=event.source_id,
                    event_type=event.event_type,
                    at=event.timestamp,
                    probs=event.probs,
                    sequence=event.sequence,
                )
                open_by_source[event.source_id] = transition.open_after
                if event.event_type != EventType.HEARTBEAT and transition.open_after is not None:
                    touched[transition.open_after.id] = transition.open_after
                for episode in transition.closed:
                    touched[episode.id] = episode
                row = NewEvent(
                    id=event_id,
                    source_id=event.source_id,
                    event_type=event.event_type.value,
                    occurred_at=event.timestamp,
                    received_at=now,
                    probs=event.probs,
                    sequence=event.sequence,
                    meta=event.metadata,
                    episode_id=transition.episode_id,
                )
                stored.append(row)
                known[event_id] = transition.episode_id
                for episode in transition.closed:
                    closed.append(episode)
                    if episode.decision == EpisodeDecision.abnormal:
                        created_alerts.append(
                            await self.alerts.record_for_episode(alert_repo, episode, now)
                        )
                results.append(IngestResult(event_id, transition.episode_id, False))
            # Flapping: the closes of this batch, per source, against the stored history.
            flips: dict[str, list[tuple[datetime, bool]]] = {}
            for episode in closed:
                if episode.ended_at is not None and episode.decision in (
                    EpisodeDecision.normal,
                    EpisodeDecision.abnormal,
                ):
                    flips.setdefault(episode.source_id, []).append(
                        (episode.ended_at, episode.decision == EpisodeDecision.abnormal)
                    )
            for source_id in sorted(flips):
                flapping = await self.alerts.episode_closed(
                    session, source_id, flips[source_id], now
                )
                if flapping is not None:
                    created_alerts.append(flapping)
            # Episodes first (alerts and events reference them), then the alerts (ORM), then
            # every event in one executemany.
            await episodes.save(list(touched.values()), now)
            if session.new:
                await session.flush()
            await repo.insert_many(stored)
            if ready is not None:
                ready.set()
        # Committed: everything below is best effort and never fails the request.
        await self._after_commit(events, results, stored, closed, created_alerts)
        return results

    async def _after_commit(
        self,
        events: list[EventIn],
        results: list[IngestResult],
        stored: list[NewEvent],
        closed: list[EpisodeState],
        created_alerts: list[Alert],
    ) -> None:
        counts: Counter[tuple[str, bool]] = Counter(
            (event.event_type.value, result.duplicate)
            for event, result in zip(events, results, strict=True)
        )
        for (event_type, duplicate), n in counts.items():
            EVENTS_INGESTED.labels(event_type=event_type, duplicate=str(duplicate).lower()).inc(n)
        # Each stored event is encoded to JSON once and shared by the JSONL log, the Redis
        # recent lists and the live stream.
        encoded = [
            (
                row.source_id,
                dumps(event_record(row)),
            )
            for row in stored
        ]
        if encoded:
            self.event_log.append_encoded([data for _, data in encoded])
        messages: list[tuple[str, dict[str, Any]]] = [
            ("episode_closed", episode_record(episode)) for episode in closed
        ]
        for alert in created_alerts:
            ALERTS.labels(status=alert.status).inc()
            messages.append(
                (
                    "alert",
                    {
                        "id": str(alert.id),
                        "episode_id": str(alert.episode_id),
                        "source_id": alert.source_id,
                        "status": alert.status,
                        "attempts": 0,
                        "last_error": alert.last_error,
                    },
                )
            )
        if encoded or messages:
            # Two independent Redis round trips; overlap them.
            await asyncio.gather(
                self.recent_cache.push_encoded(encoded),
                self.stream.publish_many(messages, encoded_events=[data for _, data in encoded]),
            )
        if any(a.status == "pending" for a in created_alerts):
            self.dispatcher.wake()
        if closed and self.event_index is not None:
            # Summaries for the knowledge assistant, written by a background task.
            self.event_index.schedule([episode.id for episode in closed])

    # -- reading -----------------------------------------------------------------------------

    async def recent(self, source_id: str | None, limit: int) -> tuple[list[EventView], str]:
        """The newest events and where they were read from (`redis` or `database`)."""
        cached = await self.recent_cache.read(source_id, limit)
        if cached is not None:
            return [EventView.from_record(item) for item in cached], "redis"
        async with self.db.sessions() as session:
            repo = EventRepository(session)
            rows = await repo.recent(source_id, limit)
            lengths = await repo.sequence_lengths(rows)
        return [EventView.of(row, lengths.get(row.id)) for row in rows], "database"

    async def page(
        self, filters: EventFilter, *, limit: int, cursor: str | None
    ) -> Page[EventView]:
        """Events newest first by their timestamp, filtered; `next_cursor` pages on."""
        since, until = filters.since, filters.until
        if since is not None and until is not None and since >= until:
            raise ValidationFailed("since must be earlier than until")
        async with self.db.sessions() as session:
            repo = EventRepository(session)
            page = await repo.page(filters, limit=limit, cursor=cursor)
            lengths = await repo.sequence_lengths(page.items)
        return Page(
            [EventView.of(row, lengths.get(row.id)) for row in page.items], page.next_cursor
        )

    async def sources(self) -> list[SourceOut]:
        """Every source with its last contact and whether it counts as online."""
        now = utcnow()
        async with self.db.sessions() as session:
            rows = await SourceRepository(session).list()
        out = []
        for row in rows:
            age = (now - row.last_seen).total_seconds()
            out.append(
                SourceOut(
                    source_id=row.id,
                    first_seen=row.first_seen,
                    last_seen=row.last_seen,
                    last_event_type=row.last_event_type,
                    last_event_at=row.last_event_at,
                    online=age <= self.settings.source_offline_after_secs,
                    seconds_since_seen=round(max(age, 0.0), 3),
                )
            )
        return out

    async def episodes(
        self, filters: EpisodeFilter, *, limit: int, cursor: str | None
    ) -> Page[EpisodeOut]:
        """Episodes newest first by start, each with its alert (one query for the page)."""
        async with self.db.sessions() as session:
            page = await EpisodeRepository(session).page(filters, limit=limit, cursor=cursor)
            ids = [row.id for row in page.items]
            alerts = await AlertRepository(session).for_episodes(ids)
            labels = await LabelRepository(session).for_episodes(ids)
            lengths = await sequence_lengths(session, Episode.sequence, ids)
        normal = self.tracker.decider.policy()[0]
        return Page(
            [
                episode_out(
                    row, alerts.get(row.id), labels.get(row.id), normal, lengths.get(row.id)
                )
                for row in page.items
            ],
            page.next_cursor,
        )

    async def episode(self, episode_id: uuid.UUID, events_limit: int = 50) -> EpisodeDetail:
        """One episode with its alert and its newest `events_limit` events; 404 when there is
        none with that id."""
        async with self.db.sessions() as session:
            row = await EpisodeRepository(session).get_summary(episode_id)
            if row is None:
                raise NotFound(f"No episode with id {episode_id}")
            alert = await AlertRepository(session).for_episode(episode_id)
            label = await LabelRepository(session).current(episode_id)
            lengths = await sequence_lengths(session, Episode.sequence, [episode_id])
            events: Page[Event] = Page([], None)
            if events_limit > 0:
                events = await EventRepository(session).page(
                    EventFilter(episode_id=episode_id), limit=events_limit, cursor=None
                )
            event_lengths = await EventRepository(session).sequence_lengths(events.items)
        normal = self.tracker.decider.policy()[0]
        summary = episode_out(row, alert, label, normal, lengths.get(episode_id))
        return EpisodeDetail(
            **summary.model_dump(),
            events=[
                EventOut.model_validate(
                    EventView.of(e, event_lengths.get(e.id)), from_attributes=True
                )
                for e in events.items
            ],
            events_next_cursor=events.next_cursor,
        )


def parse_time(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationFailed(f"{name} needs a time zone, e.g. 2026-11-25T10:00:00Z")
    return value
