"""Events, sources, episodes and the live stream."""

from __future__ import annotations

import asyncio
import json
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AfterValidator
from sse_starlette.sse import EventSourceResponse

from app.api.authz import (
    PRODUCERS,
    READERS,
    Caller,
    GuardedRoute,
    container_of,
    fast_body,
    require,
)
from app.api.deps import get_event_service, get_event_stream, get_source_registry
from app.api.paging import Cursor
from app.api.v1.prefix import API_PREFIX
from app.core.encoding import dumps
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.agents import SourcePage
from app.schemas.events import (
    EpisodeDetail,
    EpisodeFilter,
    EpisodePage,
    EventAccepted,
    EventBatchAccepted,
    EventBatchIn,
    EventFilter,
    EventIn,
    EventOut,
    EventPage,
    EventType,
    IsoDatetime,
    RecentEvents,
)
from app.schemas.safety import check_optional_line
from app.services.agents import SourceRegistry, ensure_sources_allowed
from app.services.events import EventService, EventView, parse_time
from app.services.stream import EventStream

router = APIRouter(
    route_class=GuardedRoute, prefix=API_PREFIX, tags=["events"], responses=COMMON_ERROR_RESPONSES
)


def _caller(request: Request) -> Caller:
    """The principal the route's guard resolved (None: development, anonymous)."""
    return getattr(request.state, "principal", None)


def _client_key(request: Request) -> str:
    return f"ip:{request.client.host if request.client else 'unknown'}"


Events = Annotated[EventService, Depends(get_event_service)]
Stream = Annotated[EventStream, Depends(get_event_stream)]
Registry = Annotated[SourceRegistry, Depends(get_source_registry)]
WRITE = [Depends(require(*PRODUCERS))]
READ = [Depends(require(*READERS))]
SourceFilter = Annotated[str | None, Query(max_length=128), AfterValidator(check_optional_line)]


def _event_out(event: EventView) -> EventOut:
    return EventOut.model_validate(event, from_attributes=True)


@router.post("/events", response_model=EventAccepted, status_code=202, dependencies=WRITE)
@fast_body
async def ingest_event(body: EventIn, request: Request) -> Response:
    """Store one event (committed before the 202); a repeated `event_id` returns the original."""
    # The agent's hot path: the service straight from the container rather than as one more
    # solved dependency, and the answer encoded here rather than validated against
    # `EventAccepted` again (its shape, which the API documents).
    # An agent credential posts only for its own sources (403 before anything is stored).
    ensure_sources_allowed(_caller(request), (body.source_id,))
    result = await container_of(request).event_service().ingest(body)
    return Response(
        dumps(
            {
                "id": str(result.id),
                "episode_id": str(result.episode_id) if result.episode_id else None,
                "duplicate": result.duplicate,
            }
        ),
        status_code=202,
        media_type="application/json",
    )


@router.post(
    "/events/batch", response_model=EventBatchAccepted, status_code=202, dependencies=WRITE
)
async def ingest_batch(body: EventBatchIn, service: Events, request: Request) -> EventBatchAccepted:
    """Store up to `EVENT_BATCH_MAX` events in one transaction; all are validated first."""
    # One event outside the agent's sources refuses the whole batch: nothing is stored.
    ensure_sources_allowed(_caller(request), {e.source_id for e in body.events})
    results = await service.ingest_batch(body.events)
    items = [
        EventAccepted(id=r.id, episode_id=r.episode_id, duplicate=r.duplicate) for r in results
    ]
    duplicates = sum(r.duplicate for r in results)
    return EventBatchAccepted(
        results=items, accepted=len(items) - duplicates, duplicates=duplicates
    )


@router.get("/events/recent", response_model=RecentEvents, dependencies=READ)
async def recent_events(
    service: Events,
    source_id: SourceFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> RecentEvents:
    """The newest events, newest first: from Redis when it is up, else from the database."""
    items, served_from = await service.recent(source_id, limit)
    return RecentEvents(items=[_event_out(i) for i in items], served_from=served_from)


@router.get("/events/stream", response_class=EventSourceResponse)
async def stream_events(
    request: Request,
    stream: Stream,
    caller: Annotated[Caller, Depends(require(*READERS))],
    max_events: Annotated[
        int | None, Query(ge=1, le=10_000, description="Close after this many messages")
    ] = None,
) -> EventSourceResponse:
    """Server-Sent Events: `event` (new event), `episode_closed` and `alert` (status change).

    At most STREAM_MAX_PER_PRINCIPAL open streams per caller and STREAM_MAX_SUBSCRIBERS in all
    per process, of which viewers hold at most STREAM_VIEWER_SHARE and the last
    STREAM_ADMIN_RESERVED are for admins; beyond that 429."""
    key = caller.rate_key if caller else _client_key(request)
    slot = stream.reserve(key, caller.role if caller else None)

    async def messages() -> AsyncIterator[dict[str, str]]:
        async with stream.subscribe(slot=slot) as queue:
            yield {"event": "ready", "data": "{}"}
            sent = 0
            while max_events is None or sent < max_events:
                if await request.is_disconnected():
                    break
                try:
                    async with asyncio.timeout(5):
                        raw = await queue.get()
                except TimeoutError:
                    continue
                message = json.loads(raw)
                yield {"event": message["type"], "data": json.dumps(message["data"])}
                sent += 1

    body = messages()
    # A response that never starts its body (client gone first, HEAD) never runs the
    # generator's cleanup: give the slot back when the generator is dropped.
    weakref.finalize(body, slot.release)
    return EventSourceResponse(body, ping=15)


@router.get("/events", response_model=EventPage, dependencies=READ)
async def list_events(
    service: Events,
    source_id: SourceFilter = None,
    event_type: EventType | None = None,
    since: IsoDatetime | None = None,
    until: IsoDatetime | None = None,
    episode_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EventPage:
    """Events newest first (by their timestamp), filtered (by source, type, time or
    episode); follow `next_cursor` for more."""
    filters = EventFilter(
        source_id=source_id,
        event_type=event_type.value if event_type else None,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        episode_id=episode_id,
    )
    page = await service.page(filters, limit=limit, cursor=cursor)
    return EventPage(items=[_event_out(i) for i in page.items], next_cursor=page.next_cursor)


@router.get("/sources", response_model=SourcePage, dependencies=READ)
async def list_sources(
    registry: Registry,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SourcePage:
    """Sources newest first (by first contact) with `last_seen`, whether they are online
    (`SOURCE_OFFLINE_AFTER_SECS`) and whether they are `watched` for going offline; follow
    `next_cursor` for more."""
    page = await registry.page(limit=limit, cursor=cursor)
    return SourcePage(
        items=page.items,
        next_cursor=page.next_cursor,
        offline_after_secs=registry.offline_after_secs,
    )


@router.get("/episodes", response_model=EpisodePage, dependencies=READ)
async def list_episodes(
    service: Events,
    source_id: SourceFilter = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    decision: Annotated[str | None, Query(pattern="^(normal|abnormal|unknown)$")] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EpisodePage:
    """Episodes newest first (by start)."""
    filters = EpisodeFilter(source_id=source_id, status=status, decision=decision)
    page = await service.episodes(filters, limit=limit, cursor=cursor)
    return EpisodePage(items=page.items, next_cursor=page.next_cursor)


@router.get("/episodes/{episode_id}", response_model=EpisodeDetail, dependencies=READ)
async def get_episode(
    episode_id: uuid.UUID,
    service: Events,
    events_limit: Annotated[int, Query(ge=0, le=500)] = 50,
) -> EpisodeDetail:
    """One episode with its decision, alert and events (newest first; `events_next_cursor`
    continues at `GET /api/v1/events?episode_id=…`)."""
    return await service.episode(episode_id, events_limit)
