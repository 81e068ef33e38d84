"""Paths the existing video agent calls (`POST /event/payload`, `GET /event/recent`).

Hidden from the schema; they map the original payload onto the same `EventService`.
The original payload: `event_type`, a timestamp (`timestamp`/`ts`, ISO 8601 or epoch seconds),
optional `source_id` (or `camera_id`/`source`; default "agent"), `probs`, `metadata` (or `meta`),
optional `sequence` and `event_id`; unknown fields are kept in metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import ValidationError

from app.api.authz import PRODUCERS, READERS, GuardedRoute, require
from app.api.deps import get_event_service
from app.core.errors import ValidationFailed
from app.schemas.events import EventIn
from app.services.events import EventService

router = APIRouter(route_class=GuardedRoute, prefix="/event", include_in_schema=False)

Events = Annotated[EventService, Depends(get_event_service)]

_KNOWN = {"event_id", "event_type", "timestamp", "ts", "source_id", "camera_id", "source"}
_KNOWN |= {"probs", "metadata", "meta", "sequence"}


def _epoch(ts: float, field: str) -> datetime:
    """Epoch seconds to an aware UTC datetime; NaN, infinities and overflow are the client's."""
    try:
        return datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValidationFailed(
            f"Invalid event payload: {field}: epoch seconds must be a finite number between "
            f"-62135596800 and 253402214400 (0001-01-02 .. 9999-12-30 UTC), got {ts!r}",
            context={"field": field, "value": repr(ts)},
        ) from exc


def _to_event(payload: dict[str, Any]) -> EventIn:
    field = "timestamp" if "timestamp" in payload else "ts"
    ts = payload.get("timestamp", payload.get("ts"))
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        ts = _epoch(ts, field)
    elif ts is None:
        ts = datetime.now(UTC)
    meta_field = "metadata" if payload.get("metadata") is not None else "meta"
    raw_meta = payload.get(meta_field)
    if raw_meta is not None and not isinstance(raw_meta, dict):
        raise ValidationFailed(
            f"Invalid event payload: {meta_field}: expected a JSON object such as "
            f'{{"fps": 15}}, got {type(raw_meta).__name__}',
            context={"field": meta_field, "type": type(raw_meta).__name__},
        )
    metadata = dict(raw_meta or {})
    extra = {k: v for k, v in payload.items() if k not in _KNOWN}
    if extra:
        metadata.setdefault("extra", extra)
    data = {
        "event_id": payload.get("event_id"),
        "source_id": payload.get("source_id")
        or payload.get("camera_id")
        or payload.get("source")
        or "agent",
        "event_type": payload.get("event_type"),
        "timestamp": ts,
        "probs": payload.get("probs"),
        "sequence": payload.get("sequence"),
        "metadata": metadata or None,
    }
    try:
        return EventIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"Invalid event payload: {where}: {first['msg']}") from exc


@router.post("/payload", status_code=200, dependencies=[Depends(require(*PRODUCERS))])
async def event_payload(service: Events, payload: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """The original ingest path."""
    result = await service.ingest(_to_event(payload))
    return {
        "status": "ok",
        "id": str(result.id),
        "episode_id": str(result.episode_id) if result.episode_id else None,
        "duplicate": result.duplicate,
    }


@router.get("/recent", dependencies=[Depends(require(*READERS))])
async def event_recent(
    service: Events,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    source_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> dict[str, Any]:
    """The original recent-events path: `{"events": [...], "count": n}`, newest first."""
    items, _ = await service.recent(source_id, limit)
    return {"events": [item.record() for item in items], "count": len(items)}
