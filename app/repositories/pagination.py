"""Keyset pagination with an opaque cursor: the one way every list route pages.

Pages are newest first by a timestamp column, ties broken by the primary key (also
descending). A cursor names the last row of the previous page, (timestamp, id), encoded as
url-safe base64 of a small JSON array; clients pass `next_cursor` back unchanged as `cursor`.
Each page is one query: the keyset condition, the order and `LIMIT n + 1` (the extra row
only tells whether another page follows).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, String, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import ValidationFailed

T = TypeVar("T")

INVALID_CURSOR = "cursor is not valid; pass the next_cursor value from the previous page unchanged"


def encode_cursor(at: datetime, row_id: uuid.UUID | str) -> str:
    """The opaque, url-safe cursor for the row at (`at`, `row_id`)."""
    raw = json.dumps([at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, key: Callable[[str], Any] = uuid.UUID) -> tuple[datetime, Any]:
    """(timestamp, id) of a cursor made by `encode_cursor`; 422 `invalid_cursor` otherwise.

    `key` turns the stored id back into the primary key's type (`str` for text keys)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        # In UTC, as stored; an instant outside the UTC years 1-9999 raises OverflowError.
        if not isinstance(row_id, str):
            raise TypeError("id")
        return parsed.astimezone(UTC), key(row_id)
    except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
        raise ValidationFailed(INVALID_CURSOR, code="invalid_cursor") from exc


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows, newest first, and the cursor of the next page (None: last page)."""

    items: list[T]
    next_cursor: str | None


async def keyset_page(
    session: AsyncSession,
    stmt: Select[T],
    *,
    at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID] | InstrumentedAttribute[str],
    limit: int,
    cursor: str | None,
) -> Page[T]:
    """Run `stmt` (a select of one entity, filters applied) as one newest-first page.

    `at` and `row_id` are the entity's timestamp and primary-key attributes; the page holds
    up to `limit` rows after the `cursor` row in the order (at desc, row_id desc).
    """
    if cursor is not None:
        # Text primary keys (source ids) page like UUID ones.
        key = str if isinstance(row_id.type, String) else uuid.UUID
        after_at, after_id = decode_cursor(cursor, key)
        stmt = stmt.where(or_(at < after_at, and_(at == after_at, row_id < after_id)))
    stmt = stmt.order_by(at.desc(), row_id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    last: Any = rows[-1]
    return Page(rows, encode_cursor(getattr(last, at.key), getattr(last, row_id.key)))
