"""Query parameters every paged list route shares: `cursor`, and the refusal of `offset`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.core.errors import ValidationFailed

Cursor = Annotated[
    str | None,
    Query(
        max_length=512,
        description="`next_cursor` of the previous page, unchanged; leave out for the first page",
    ),
]

OFFSET_REMOVED = (
    "offset paging was replaced by cursors: leave offset out and pass the next_cursor "
    "value of the previous page as cursor"
)


async def refuse_offset(
    offset: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> None:
    """422 for the retired `offset` parameter, so an old client fails loudly instead of
    reading the first page over and over."""
    if offset is not None:
        raise ValidationFailed(OFFSET_REMOVED, code="offset_not_supported")
