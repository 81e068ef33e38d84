"""Routing: which channels get which alerts, by source glob and alert kind.

Routes are a union of rules `{source: glob, kinds: [...], channels: [...]}`; a channel named
in a rule must also be enabled (`ALERT_CHANNELS`), `"*"` means every enabled channel. Where
they come from, first match wins: rules set through the admin API (stored), else
`ALERT_ROUTES_FILE` (JSON list of rules), else the default: every channel gets everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import Database
from app.core.errors import ValidationFailed
from app.core.settings import ALERT_CHANNEL_NAMES, AlertSettings
from app.models.alert import AlertKind, AlertRoute
from app.models.base import utcnow
from app.repositories.alerts import RouteRepository


class RouteKind(StrEnum):
    """What a route selects; recovery notices travel with `source_offline`."""

    abnormal_episode = "abnormal_episode"
    source_offline = "source_offline"
    delivery_failure = "delivery_failure"
    job_failed = "job_failed"


def route_kind(kind: str) -> RouteKind:
    if kind == AlertKind.source_recovered:
        return RouteKind.source_offline
    return RouteKind(kind)


class RouteOrigin(StrEnum):
    api = "api"
    file = "file"
    default = "default"


class RouteRule(BaseModel):
    """One rule; validated the same way from the API and from the routes file."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field("*", min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    kinds: list[RouteKind] = Field(default_factory=lambda: list(RouteKind), min_length=1)
    channels: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=8)

    @field_validator("channels")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        names = [c.strip().lower() for c in v]
        unknown = [c for c in names if c != "*" and c not in ALERT_CHANNEL_NAMES]
        if unknown:
            raise ValueError(
                f"unknown channel(s) {', '.join(unknown)}; "
                f"choose from {', '.join(ALERT_CHANNEL_NAMES)} or *"
            )
        return list(dict.fromkeys(names))

    def matches(self, kind: RouteKind, source_id: str) -> bool:
        return kind in self.kinds and fnmatchcase(source_id, self.source)


_RULES = TypeAdapter(list[RouteRule])


@dataclass(frozen=True)
class RouteTable:
    """The effective rules and where they came from."""

    origin: RouteOrigin
    rules: list[RouteRule]
    enabled: list[str] = field(default_factory=list)

    def channels_for(self, kind: str, source_id: str) -> list[str]:
        """Enabled channels that some rule sends this alert to, in `ALERT_CHANNELS` order."""
        wanted: set[str] = set()
        rk = route_kind(kind)
        for rule in self.rules:
            if rule.matches(rk, source_id):
                wanted.update(self.enabled if "*" in rule.channels else rule.channels)
        return [name for name in self.enabled if name in wanted]


def load_routes_file(path: str) -> list[RouteRule]:
    """Parse ALERT_ROUTES_FILE; a broken file is a clear start-up/configuration error."""
    try:
        return _RULES.validate_python(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise ValidationFailed(
            f"ALERT_ROUTES_FILE {path} is not a valid routes file: {exc}"
        ) from exc


class RouteService:
    """Reads and replaces the routing rules."""

    def __init__(self, database: Database, settings: AlertSettings) -> None:
        self.db = database
        self.settings = settings
        self._file_rules: list[RouteRule] | None = None

    def _fallback(self) -> RouteTable:
        enabled = self.settings.channel_names
        if self.settings.routes_file:
            if self._file_rules is None:
                self._file_rules = load_routes_file(self.settings.routes_file)
            return RouteTable(RouteOrigin.file, self._file_rules, enabled)
        return RouteTable(RouteOrigin.default, [RouteRule()], enabled)

    def check_file(self) -> None:
        """Fail early (at start-up) on a broken routes file."""
        self._fallback()

    async def table(self, session: AsyncSession) -> RouteTable:
        rows = await RouteRepository(session).list()
        if not rows:
            return self._fallback()
        rules = [
            RouteRule(source=r.source_pattern, kinds=r.kinds, channels=r.channels) for r in rows
        ]
        return RouteTable(RouteOrigin.api, rules, self.settings.channel_names)

    async def current(self) -> RouteTable:
        async with self.db.sessions() as session:
            return await self.table(session)

    async def replace(self, rules: list[RouteRule]) -> RouteTable:
        """Store these rules (an empty list goes back to the file or the default)."""
        now = utcnow()
        async with self.db.sessions.begin() as session:
            await RouteRepository(session).replace(
                [
                    AlertRoute(
                        position=i,
                        source_pattern=rule.source,
                        kinds=[k.value for k in rule.kinds],
                        channels=rule.channels,
                        created_at=now,
                    )
                    for i, rule in enumerate(rules)
                ]
            )
        return await self.current()
