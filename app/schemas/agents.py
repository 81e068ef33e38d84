"""Request and response bodies for agent credentials and registered sources."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.events import SourceOut
from app.schemas.safety import SafeLine

# Globs over source ids: letters, digits, `._:@/+-`, and the wildcards `*` and `?` (no
# character classes, so a pattern reads the same in fnmatch and SQL LIKE).
SOURCE_PATTERN = r"^[A-Za-z0-9._:@/+*?-]+$"
SourcePattern = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=SOURCE_PATTERN)
]
AgentName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
]
SourceId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/+-]+$")
]


class AgentIn(BaseModel):
    """A new agent credential, bound to the sources it may post events for."""

    name: AgentName = Field(examples=["b1-gateway"])
    source_patterns: list[SourcePattern] = Field(
        min_length=1,
        max_length=20,
        examples=[["cam-b1-*"]],
        description="Globs (`*`, `?`) of the source ids this agent may post for",
    )


class AgentOut(BaseModel):
    """An agent credential as listed (never its token)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    source_patterns: list[str]
    created_at: datetime
    created_by: str | None
    rotated_at: datetime | None
    last_seen_at: datetime | None


class AgentCreated(AgentOut):
    """A new or rotated credential: `token` is shown this once and stored only as a hash."""

    token: str = Field(description="Bearer token for the agent; shown only in this answer")


class AgentList(BaseModel):
    items: list[AgentOut]


class RegisteredSourceIn(BaseModel):
    """Declare a source: `watch_offline` makes it watched for going quiet."""

    watch_offline: bool = True
    name: SafeLine | None = Field(default=None, max_length=200)


class RegisteredSourceOut(BaseModel):
    """A source an admin registered."""

    model_config = ConfigDict(from_attributes=True)

    source_id: str
    name: str | None
    watch_offline: bool
    registered_by: str | None
    registered_at: datetime


class WatchedSourceOut(SourceOut):
    """A source in the paged listing, with whether it is watched for going offline."""

    watched: bool = Field(
        description="Covered by an agent's source patterns or registered by an admin"
    )


class SourcePage(BaseModel):
    """A page of sources, newest first by `first_seen`; pass `next_cursor` as `cursor`."""

    items: list[WatchedSourceOut]
    next_cursor: str | None
    offline_after_secs: int
