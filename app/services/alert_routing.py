"""Routing: which channels get which alerts, by source glob and alert kind.

Routes are a union of rules `{source: glob, kinds: [...], channels: [...]}`; a channel named
in a rule must also be enabled (`ALERT_CHANNELS`), `"*"` means every enabled channel. Where
they come from, first match wins: rules set through the admin API (stored), else
`ALERT_ROUTES_FILE` (JSON list of rules), else the default: every channel gets everything.

A rule may also carry:
- `active_during` / `inactive_during`: schedule names (`/api/v1/alerts/schedules`); the rule
  routes only while one of the first is active and none of the second;
- `escalation`: a chain of steps for the incidents it routes (first matching rule wins);
- `inhibited_by_offline`: a source id (or glob); such a rule routes nothing: while that
  source is offline, alerts from the rule's sources are recorded as `inhibited`.
The `digest` kind goes to every enabled channel unless some rule names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import (
    TypeAdapter,
    ValidationError,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import Database
from app.core.errors import ValidationFailed
from app.core.settings import AlertSettings
from app.models.alert import AlertKind, AlertRoute
from app.models.base import utcnow
from app.repositories.alerts import RouteRepository
from app.schemas.alert_routing import (
    EscalationChain,
    EscalationStep,
    RouteKind,
    RouteOrigin,
    RouteRule,
)
from app.services.alert_schedules import ScheduleBook

# Kinds that travel like another: a recovery like the outage, the flapping notice and the
# maintenance messages like the source's behaviour alerts.
_ROUTED_AS = {
    AlertKind.source_recovered: RouteKind.source_offline,
    AlertKind.source_flapping: RouteKind.abnormal_episode,
    AlertKind.maintenance_reminder: RouteKind.abnormal_episode,
    AlertKind.maintenance_summary: RouteKind.abnormal_episode,
}


def route_kind(kind: str) -> RouteKind:
    mapped = _ROUTED_AS.get(AlertKind(kind))
    return mapped if mapped is not None else RouteKind(kind)


_RULES = TypeAdapter(list[RouteRule])


@dataclass(frozen=True)
class RouteTable:
    """The effective rules and where they came from."""

    origin: RouteOrigin
    rules: list[RouteRule]
    enabled: list[str] = field(default_factory=list)
    schedules: ScheduleBook = field(default_factory=ScheduleBook.empty)
    # ALERT_ESCALATE_AFTER_SECS + ALERT_ESCALATION_CHANNELS as a one-step chain, if set.
    default_escalation: EscalationChain | None = None

    def channels_for(self, kind: str, source_id: str, now: datetime) -> list[str]:
        """Enabled channels that some rule sends this alert to, in `ALERT_CHANNELS` order."""
        wanted: set[str] = set()
        rk = route_kind(kind)
        if rk == RouteKind.digest and not any(
            RouteKind.digest in r.kinds and not r.inhibits_only for r in self.rules
        ):
            return list(self.enabled)
        for rule in self.rules:
            if rule.matches(rk, source_id, now, self.schedules):
                wanted.update(self.enabled if "*" in rule.channels else rule.channels)
        return [name for name in self.enabled if name in wanted]

    def escalation_for(self, kind: str, source_id: str, now: datetime) -> EscalationChain | None:
        """The first matching rule's chain, else the settings' one-step chain."""
        rk = route_kind(kind)
        for rule in self.rules:
            if rule.escalation is not None and rule.matches(rk, source_id, now, self.schedules):
                return rule.escalation
        return self.default_escalation

    def inhibitors_for(self, source_id: str) -> list[str]:
        """Source ids/globs whose outage inhibits alerts from this source."""
        return [
            r.inhibited_by_offline
            for r in self.rules
            if r.inhibited_by_offline is not None and fnmatchcase(source_id, r.source)
        ]


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

    @property
    def default_escalation(self) -> EscalationChain | None:
        after, channels = self.settings.escalate_after_secs, self.settings.escalation_channel_names
        if after <= 0 or not channels:
            return None
        return EscalationChain(steps=[EscalationStep(after_secs=after, channels=channels)])

    def _fallback(self, schedules: ScheduleBook) -> RouteTable:
        enabled = self.settings.channel_names
        if self.settings.routes_file:
            if self._file_rules is None:
                self._file_rules = load_routes_file(self.settings.routes_file)
            return RouteTable(
                RouteOrigin.file, self._file_rules, enabled, schedules, self.default_escalation
            )
        return RouteTable(
            RouteOrigin.default, [RouteRule()], enabled, schedules, self.default_escalation
        )

    def check_file(self) -> None:
        """Fail early (at start-up) on a broken routes file."""
        self._fallback(ScheduleBook.empty())

    async def table(self, session: AsyncSession) -> RouteTable:
        rows = await RouteRepository(session).list()
        schedules = await ScheduleBook.load(session, self.settings.timezone)
        if not rows:
            return self._fallback(schedules)
        rules = [
            RouteRule.model_validate(
                {
                    **(r.options or {}),
                    "source": r.source_pattern,
                    "kinds": r.kinds,
                    "channels": r.channels,
                }
            )
            for r in rows
        ]
        return RouteTable(
            RouteOrigin.api,
            rules,
            self.settings.channel_names,
            schedules,
            self.default_escalation,
        )

    async def current(self) -> RouteTable:
        async with self.db.sessions() as session:
            return await self.table(session)

    async def replace(self, rules: list[RouteRule]) -> RouteTable:
        """Store these rules (an empty list goes back to the file or the default). Every
        schedule a rule names must exist."""
        now = utcnow()
        async with self.db.sessions.begin() as session:
            known = await ScheduleBook.load(session, self.settings.timezone)
            missing = sorted({n for r in rules for n in r.schedule_names()} - set(known.names))
            if missing:
                raise ValidationFailed(
                    f"unknown schedule(s) {', '.join(missing)}; define them first with "
                    "PUT /api/v1/alerts/schedules"
                )
            await RouteRepository(session).replace(
                [
                    AlertRoute(
                        position=i,
                        source_pattern=rule.source,
                        kinds=[k.value for k in rule.kinds],
                        channels=rule.channels,
                        options=rule.options,
                        created_at=now,
                    )
                    for i, rule in enumerate(rules)
                ]
            )
        return await self.current()
