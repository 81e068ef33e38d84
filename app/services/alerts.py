"""Alerts: recording (silences, cooldown, hourly budget, routing), reading, acknowledging,
and the dispatcher that delivers every (alert, channel) exactly once.

Exactly once per channel, in practice: the alert and one delivery row per routed channel
are committed with what caused them (the episode close, the outage row). Each channel has
its own dispatch loop that claims only its rows with one conditional UPDATE
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock on SQLite), so two processes never
send the same row, and a failing or slow channel never blocks, delays or repeats another. A
claim carries a lease; a row whose dispatcher died is retried after `ALERT_CLAIM_LEASE_SECS`,
and an outcome is recorded only by the claim that is still current. The one unavoidable
gap: a process killed after a provider accepted a message but before the `sent` commit
resends it once after the lease (webhook and e-mail carry a stable delivery id so a
receiver can drop that repeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from loguru import logger
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.notifiers.base import DeliveryOutcome, DeliveryResult, NotifierRegistry
from app.core.database import Database
from app.core.errors import NotFound
from app.core.health import ComponentHealth
from app.core.metrics import ALERT_DELIVERIES, ALERT_DELIVERY_LATENCY, ALERTS, JOBS_FAILED_ALERTS
from app.core.settings import AlertSettings
from app.models.alert import (
    INCIDENT_KINDS,
    AckVia,
    Alert,
    AlertDelivery,
    AlertKind,
    AlertStatus,
    DeliveryStage,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    SourceFlap,
    parse_stage,
)
from app.models.base import utcnow
from app.repositories.alerts import QUIET, AlertRepository, DeliveryRepository
from app.repositories.events import EpisodeState
from app.repositories.incidents import FlapRepository, IncidentRepository
from app.schemas.alerts import AlertOut
from app.services.alert_routing import RouteService, RouteTable
from app.services.alert_text import AlertRenderer
from app.services.event_knowledge import EventKnowledgeIndexer
from app.services.kakao import (  # re-exported: the Kakao channel moved there
    CredentialStore,
    KakaoNotConfigured,
    KakaoNotifier,
)
from app.services.silences import SilenceService
from app.services.stream import EventStream

if TYPE_CHECKING:
    from app.services.ack_links import AckLinks
    from app.services.source_monitor import SourceMonitor


RECORD_ONLY = (
    "ALERT_CHANNELS is empty: alerts are recorded only, nothing is sent; set ALERT_CHANNELS "
    "(kakao, slack, webhook, email) and the channel's settings"
)


@runtime_checkable
class Housekeeper(Protocol):
    """A periodic alert job run by the dispatcher's housekeeping loop (incident updates and
    resolves, escalation steps, maintenance reminders, digests…). `run` returns how many
    deliveries it created (so the channel loops are woken); it must be safe to run in several
    processes at once (conditional UPDATEs or primary keys decide who writes)."""

    name: str

    async def run(self, now: datetime) -> int: ...


@dataclass(frozen=True)
class _Quiet:
    """Why an alert sends nothing, and what it is tied to (an incident, an outage)."""

    status: AlertStatus
    reason: str
    incident: Incident | None = None
    inhibited_by: uuid.UUID | None = None


class ChannelHealth(BaseModel):
    """One alert channel in `/health`: switched on, has its settings, rows waiting, and how
    many of its latest finished deliveries failed in a row (with the newest failure's error)."""

    enabled: bool
    configured: bool
    pending: int
    recent_failures: int = 0
    last_error: str | None = None


class AlertsHealth(ComponentHealth):
    """`/health` component `alerts`: the dispatcher, its backlog and each channel; `degraded`
    with `reason` (all of them in `reasons`) when alerts would not reach anyone."""

    dispatcher_running: bool
    pending: int
    oldest_pending_age_secs: float | None
    kakao_configured: bool
    channels: dict[str, ChannelHealth]
    reason: str | None = None
    reasons: list[str] | None = None


# What each channel needs to be configured (named in health reasons and the start-up WARNING).
CHANNEL_SETTINGS = {
    "kakao": "KAKAO_ACCESS_TOKEN (and KAKAO_REFRESH_TOKEN with KAKAO_REST_API_KEY)",
    "slack": "SLACK_WEBHOOK_URL",
    "webhook": "WEBHOOK_URL and WEBHOOK_SECRET",
    "email": "SMTP_HOST, ALERT_EMAIL_FROM and ALERT_EMAIL_TO",
}
# A channel whose latest this-many finished deliveries all failed degrades `/health`.
FAILING_STREAK = 5


# The alert row's own columns in the API's alert; the other two fields come from its deliveries.
_ALERT_ROW_FIELDS = tuple(
    name for name in AlertOut.model_fields if name not in ("next_attempt_at", "deliveries")
)


def alert_out(alert: Alert, deliveries: list[AlertDelivery]) -> AlertOut:
    """An alert as the API shows it: its row, its deliveries, and the earliest pending retry."""
    waiting = [d.next_attempt_at for d in deliveries if d.status == "pending" and d.next_attempt_at]
    return AlertOut.model_validate(
        {
            **{name: getattr(alert, name) for name in _ALERT_ROW_FIELDS},
            "next_attempt_at": min(waiting) if waiting else None,
            "deliveries": deliveries,
        }
    )


def pending_delivery(
    alert_id: uuid.UUID, channel: str, stage: DeliveryStage | str, now: datetime
) -> AlertDelivery:
    """A delivery of `stage` (see `stage_name`) to `channel`, due at once (also when `now`
    is a housekeeper's controlled clock)."""
    return AlertDelivery(
        alert_id=alert_id,
        channel=channel,
        stage=str(stage.value if isinstance(stage, DeliveryStage) else stage),
        status=DeliveryStatus.pending.value,
        attempts=0,
        next_attempt_at=None,
        created_at=now,
        updated_at=now,
    )


def summarise(alert: Alert, deliveries: list[AlertDelivery]) -> None:
    """Set the alert's status, attempts, last_error and sent_at from its first-stage
    deliveries: sending > pending > sent | partial | undeliverable | failed."""
    notify = [d for d in deliveries if d.stage == DeliveryStage.notify]
    if not notify:
        return
    statuses = {d.status for d in notify}
    if DeliveryStatus.sending in statuses:
        status = AlertStatus.sending
    elif DeliveryStatus.pending in statuses:
        status = AlertStatus.pending
    elif statuses == {DeliveryStatus.sent}:
        status = AlertStatus.sent
    elif DeliveryStatus.sent in statuses:
        status = AlertStatus.partial
    elif statuses == {DeliveryStatus.undeliverable}:
        status = AlertStatus.undeliverable
    else:
        status = AlertStatus.failed
    alert.status = status.value
    alert.attempts = max(d.attempts for d in notify)
    errors = [(d.channel, d.last_error) for d in notify if d.last_error and d.status != "sent"]
    if len(notify) == 1:
        alert.last_error = errors[0][1] if errors else None
    else:
        alert.last_error = "; ".join(f"{c}: {e}" for c, e in errors) or None
    sent = [d.sent_at for d in notify if d.sent_at is not None]
    alert.sent_at = max(sent) if sent else None


class AlertService:
    """Writes alerts and their deliveries inside the caller's transaction; lists and acks."""

    def __init__(
        self,
        database: Database,
        settings: AlertSettings,
        renderer: AlertRenderer,
        routes: RouteService,
    ) -> None:
        self.db = database
        self.settings = settings
        self.renderer = renderer
        self.routes = routes

    async def record_for_episode(
        self, alerts: AlertRepository, episode: EpisodeState, now: datetime
    ) -> Alert:
        """An abnormal close (called inside the ingest transaction)."""
        return await self.record(
            alerts.session,
            kind=AlertKind.abnormal_episode,
            source_id=episode.source_id,
            now=now,
            occurred_at=episode.ended_at or episode.started_at,
            label=episode.top_label,
            score=episode.anomaly_score,
            episode_id=episode.id,
        )

    async def _quiet_reason(
        self,
        session: AsyncSession,
        kind: AlertKind,
        source_id: str,
        now: datetime,
        budgeted: bool,
        table: RouteTable,
        skip_silences: bool = False,
    ) -> _Quiet | None:
        """Why this alert sends nothing, in order: a silence (unless `skip_silences`: a
        silence's own reminder and summary), an offline gateway, a flapping source, an open
        incident it joins, the cooldown, the hourly budgets."""
        silence = (
            None
            if skip_silences
            else await SilenceService.matching(session, source_id, now, table.schedules)
        )
        if silence is not None:
            until = (
                f"while schedule {silence.schedule} runs"
                if silence.schedule
                else f"until {silence.ends_at.isoformat() if silence.ends_at else '?'}"
            )
            return _Quiet(AlertStatus.silenced, f"silenced by {silence.id} {until}")
        gateways = [g for g in table.inhibitors_for(source_id) if g != source_id]
        if gateways:
            outage = await IncidentRepository(session).outage_of(gateways)
            if outage is not None and outage.source_id != source_id:
                return _Quiet(
                    AlertStatus.inhibited,
                    f"inhibited: {outage.source_id} offline since "
                    f"{outage.offline_since.isoformat()} (outage alert {outage.alert_id})",
                    inhibited_by=outage.alert_id,
                )
        if kind == AlertKind.abnormal_episode:
            flap = await FlapRepository(session).get(source_id)
            if flap is not None:
                return _Quiet(
                    AlertStatus.suppressed,
                    f"flapping since {flap.since.isoformat()}: quiet until stable for "
                    f"FLAP_WINDOW_SECS={self.settings.flap_window_secs}",
                )
        window = self.settings.incident_group_window_secs
        if kind in INCIDENT_KINDS and window > 0:
            incident = await IncidentRepository(session).open_for(
                source_id, kind.value, now - timedelta(seconds=window)
            )
            if incident is not None:
                return _Quiet(
                    AlertStatus.grouped,
                    f"joined incident {incident.id} (opened {incident.opened_at.isoformat()})",
                    incident=incident,
                )
        alerts = AlertRepository(session)
        if kind == AlertKind.abnormal_episode and self.settings.cooldown_secs > 0:
            since = now - timedelta(seconds=self.settings.cooldown_secs)
            recent = await alerts.last_unsuppressed_since(source_id, since)
            if recent is not None:
                return _Quiet(
                    AlertStatus.suppressed,
                    f"cooldown: alert {recent.id} for this source at {recent.created_at.isoformat()}",
                )
        if budgeted:
            over = await self._over_budget(alerts, source_id, now)
            if over is not None:
                return _Quiet(*over)
        return None

    async def _over_budget(
        self, alerts: AlertRepository, source_id: str, now: datetime
    ) -> tuple[AlertStatus, str] | None:
        """The hourly budgets, counted in the database (so they hold across processes).

        A source may spend at most ALERT_MAX_PER_SOURCE_PER_HOUR; the global
        ALERT_MAX_PER_HOUR never suppresses a source's first alert of the hour, so one noisy
        producer cannot starve the others.
        """
        per_source, global_cap = self.settings.max_per_source_per_hour, self.settings.max_per_hour
        if per_source <= 0 and global_cap <= 0:
            return None
        since = now - timedelta(hours=1)
        mine = await alerts.count_sendable_since(since, source_id=source_id)
        if per_source > 0 and mine >= per_source:
            return AlertStatus.suppressed, (
                f"budget: {mine} alerts from this source in the last hour reached "
                f"ALERT_MAX_PER_SOURCE_PER_HOUR={per_source}"
            )
        if global_cap > 0 and mine > 0:
            count = await alerts.count_sendable_since(since)
            if count >= global_cap:
                return AlertStatus.suppressed, (
                    f"budget: {count} alerts in the last hour reached "
                    f"ALERT_MAX_PER_HOUR={global_cap}"
                )
        return None

    async def record(
        self,
        session: AsyncSession,
        *,
        kind: AlertKind,
        source_id: str,
        now: datetime,
        occurred_at: datetime | None = None,
        label: str | None = None,
        score: float | None = None,
        episode_id: uuid.UUID | None = None,
        exclude_channels: frozenset[str] = frozenset(),
        budgeted: bool = True,
        data: dict[str, Any] | None = None,
        skip_silences: bool = False,
    ) -> Alert:
        """One alert and a pending delivery per routed channel; or `silenced`, `inhibited`,
        `suppressed`, `grouped` (no deliveries), or `undeliverable` when no channel would
        get it. An alert of an incident kind opens an incident or joins the open one."""
        status, error = AlertStatus.pending, None
        table = await self.routes.table(session)
        quiet = await self._quiet_reason(
            session, kind, source_id, now, budgeted, table, skip_silences
        )
        if quiet is not None:
            status, error = quiet.status, quiet.reason
        channels: list[str] = []
        if status == AlertStatus.pending:
            channels = [
                c for c in table.channels_for(kind, source_id, now) if c not in exclude_channels
            ]
            if not channels:
                status = AlertStatus.undeliverable
                error = (
                    RECORD_ONLY
                    if not table.enabled
                    else f"no route sends {kind.value} alerts from this source to an enabled "
                    "channel (see GET /api/v1/alerts/routes)"
                )
        alert = Alert(
            id=uuid.uuid4(),
            kind=kind.value,
            episode_id=episode_id,
            source_id=source_id,
            status=status.value,
            label=label,
            score=score,
            occurred_at=occurred_at or now,
            text="",
            attempts=0,
            last_error=error,
            created_at=now,
            updated_at=now,
            inhibited_by=quiet.inhibited_by if quiet else None,
            data=data,
        )
        alert.text = self.renderer.summary(alert)
        incidents = IncidentRepository(session)
        if quiet is not None and quiet.incident is not None:
            alert.incident_id = quiet.incident.id
            await incidents.join(quiet.incident.id, now, score, label)
        elif kind in INCIDENT_KINDS and status in (AlertStatus.pending, AlertStatus.undeliverable):
            chain = table.escalation_for(kind, source_id, now) if channels else None
            incident = Incident(
                id=uuid.uuid4(),
                source_id=source_id,
                kind=kind.value,
                status=IncidentStatus.open.value,
                opened_at=now,
                last_alert_at=now,
                alert_count=1,
                notified_count=1,
                max_score=score,
                label=label,
                first_alert_id=alert.id,
                updates_sent=0,
                escalation=chain.model_dump(mode="json") if chain else None,
                escalation_steps_done=0,
                escalation_next_at=now + timedelta(seconds=chain.step(1)[0]) if chain else None,
                created_at=now,
                updated_at=now,
            )
            incidents.add(incident)
            alert.incident_id = incident.id
        elif kind == AlertKind.source_recovered:
            # The recovery notice is the outage incident's resolve message.
            window_start = now - timedelta(days=366)
            outage = await incidents.open_for(
                source_id, AlertKind.source_offline.value, window_start
            )
            if outage is not None:
                alert.incident_id = outage.id
                await incidents.resolve(outage.id, now, None)
        session.add(alert)
        for channel in channels:
            session.add(pending_delivery(alert.id, channel, DeliveryStage.notify, now))
        return alert

    async def episode_closed(
        self,
        session: AsyncSession,
        source_id: str,
        closed: list[tuple[datetime, bool]],
        now: datetime,
    ) -> Alert | None:
        """Flapping: called in the ingest transaction with the source's episodes closed by
        this batch (oldest first, not yet in the database). More than FLAP_MAX_CHANGES flips
        between normal and abnormal within FLAP_WINDOW_SECS (episode time) mark the source
        flapping: one `source_flapping` alert, then its behaviour alerts are suppressed until
        it has been stable for the window (cleared by the incident housekeeper)."""
        limit = self.settings.flap_max_changes
        if limit <= 0 or not closed:
            return None
        flaps = FlapRepository(session)
        history = await flaps.recent_decisions(source_id, limit + 2)
        timeline = sorted([*history, *closed], key=lambda item: item[0])
        newest = timeline[-1][0]
        start = newest - timedelta(seconds=self.settings.flap_window_secs)
        states = [abnormal for at, abnormal in timeline if at >= start]
        changes = sum(1 for a, b in itertools.pairwise(states) if a != b)
        # Did this batch flip the state? (A stable stretch must not extend flapping.)
        recent = [abnormal for _, abnormal in timeline[-(len(closed) + 1) :]]
        flipped = any(a != b for a, b in itertools.pairwise(recent))
        flap = await flaps.get(source_id)
        if flap is not None:
            if flipped:
                await flaps.touch(source_id, now, changes)
            return None
        if changes <= limit:
            return None
        alert = await self.record(
            session,
            kind=AlertKind.source_flapping,
            source_id=source_id,
            now=now,
            label=str(changes),
            budgeted=False,
        )
        flaps.add(
            SourceFlap(
                source_id=source_id,
                since=now,
                last_change_at=now,
                changes=changes,
                alert_id=alert.id,
            )
        )
        return alert

    async def job_failed(self, job_name: str, job_id: uuid.UUID, error: str) -> None:
        """A background job failed for good (every retry spent): a `job_failed` alert, routed
        to the alert channels like any other (source `job:<name>`), plus an ERROR log line and
        `sentinel_job_failed_alerts_total{job}`."""
        JOBS_FAILED_ALERTS.labels(job=job_name).inc()
        logger.bind(alert="job_failed", job=job_name, job_id=str(job_id)).error(
            "ALERT job {} ({}) failed for good: {}", job_name, job_id, error[:300]
        )
        now = utcnow()
        async with self.db.sessions.begin() as session:
            await self.record(
                session,
                kind=AlertKind.job_failed,
                source_id=f"job:{job_name}",
                now=now,
                label=job_name,
                budgeted=False,
            )

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None,
        status: str | None,
        source_id: str | None,
        kind: str | None = None,
    ) -> tuple[list[AlertOut], str | None]:
        async with self.db.sessions() as session:
            page = await AlertRepository(session).page(
                limit=limit, cursor=cursor, status=status, source_id=source_id, kind=kind
            )
            deliveries = await DeliveryRepository(session).for_alerts([r.id for r in page.items])
        return [alert_out(r, deliveries[r.id]) for r in page.items], page.next_cursor

    async def get(self, alert_id: uuid.UUID) -> AlertOut:
        async with self.db.sessions() as session:
            alert = await AlertRepository(session).get(alert_id)
            if alert is None:
                raise NotFound(f"No alert with id {alert_id}")
            return alert_out(alert, await DeliveryRepository(session).for_alert(alert_id))

    async def acknowledge(self, alert_id: uuid.UUID, who: str) -> AlertOut:
        """Record who took the alert (the first acknowledgement stands); stops escalation."""
        now = utcnow()
        async with self.db.sessions.begin() as session:
            alert = await AlertRepository(session).get_for_update(alert_id)
            if alert is None:
                raise NotFound(f"No alert with id {alert_id}")
            if alert.acked_at is None:
                alert.acked_at, alert.acked_by, alert.updated_at = now, who, now
            if alert.incident_id is not None:
                # The whole incident is taken: its other alerts, its escalation steps.
                await IncidentRepository(session).acknowledge(
                    alert.incident_id, now, who, AckVia.api.value, None
                )
            deliveries = await DeliveryRepository(session).for_alert(alert_id)
            return alert_out(alert, deliveries)


class AlertDispatcher:
    """Background loops that deliver pending deliveries, one loop per channel, plus a
    housekeeping loop (escalation, offline sources); started and stopped with the app.

    On shutdown each loop finishes the delivery in flight and records its outcome;
    deliveries it had claimed but not started go back to `pending`.
    """

    BATCH = 10

    def __init__(
        self,
        database: Database,
        notifiers: NotifierRegistry,
        renderer: AlertRenderer,
        alerts: AlertService,
        stream: EventStream,
        settings: AlertSettings,
        monitor: SourceMonitor | None = None,
        event_index: EventKnowledgeIndexer | None = None,
        keepers: list[Housekeeper] | None = None,
        ack_links: AckLinks | None = None,
    ) -> None:
        self.keepers = list(keepers or [])
        self.ack_links = ack_links
        self.db = database
        self.notifiers = notifiers
        self.renderer = renderer
        self.alerts = alerts
        self.monitor = monitor
        self.event_index = event_index
        self.stream = stream
        self.settings = settings
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[str, asyncio.Event] = {}
        self._stopping = False

    @property
    def running(self) -> bool:
        return bool(self._tasks) and all(not t.done() for t in self._tasks)

    def wake(self) -> None:
        """Deliver now instead of at the next tick (called after an alert is committed)."""
        for event in self._wake.values():
            event.set()

    async def housekeep(self, now: datetime) -> int:
        """One pass of every housekeeper at `now` (tests drive it with a controlled clock)."""
        created = 0
        for keeper in self.keepers:
            created += await keeper.run(now)
        if created:
            self.wake()
        return created

    @property
    def active_channels(self) -> list[str]:
        """Channels with their own loop: enabled or escalation channels. Rows left for any
        other channel (settings changed since, or a rule's escalation step) are swept by the
        housekeeping loop."""
        wanted = {*self.settings.channel_names, *self.settings.escalation_channel_names}
        return [name for name in self.notifiers if name in wanted]

    async def start(self) -> None:
        self._stopping = False
        self._wake = {name: asyncio.Event() for name in [*self.notifiers, "_housekeeping"]}
        if not self.settings.dispatcher_enabled:
            logger.info("alert dispatcher disabled (ALERT_DISPATCHER_ENABLED=false)")
            return
        problems = self._configuration_problems()
        if problems:
            logger.warning("alerts: {}", "; ".join(problems))
        self.alerts.routes.check_file()
        self._tasks = [
            asyncio.create_task(self._loop(name), name=f"alert-dispatcher-{name}")
            for name in self.active_channels
        ]
        self._tasks.append(
            asyncio.create_task(self._housekeeping(), name="alert-dispatcher-housekeeping")
        )
        logger.info(
            "alert dispatcher started; channels {}",
            ", ".join(self.settings.channel_names) or "none",
        )

    async def stop(self) -> None:
        self._stopping = True
        self.wake()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _sleep(self, name: str, seconds: float) -> None:
        event = self._wake[name]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
        event.clear()

    async def _loop(self, channel: str) -> None:
        while not self._stopping:
            try:
                handled = await self.dispatch_channel(channel)
            except Exception as exc:  # the loop must survive a database or provider outage
                logger.warning(
                    "alert dispatch ({}) failed: {}: {}", channel, type(exc).__name__, exc
                )
                handled = 0
            if handled >= self.BATCH or self._stopping:
                continue
            await self._sleep(channel, self.settings.dispatch_interval_secs)

    async def _housekeeping(self) -> None:
        while not self._stopping:
            now = utcnow()
            created = 0
            steps = [
                ("sources", self._check_sources),
                *((keeper.name, keeper.run) for keeper in self.keepers),
                ("other channels", self._sweep_other_channels),
            ]
            for name, step in steps:
                try:
                    created += await step(now)
                except Exception as exc:
                    logger.warning(
                        "alert housekeeping ({}) failed: {}: {}", name, type(exc).__name__, exc
                    )
            if created:
                self.wake()
            await self._sleep("_housekeeping", self.settings.monitor_interval_secs)

    async def _sweep_other_channels(self, now: datetime) -> int:
        active = set(self.active_channels)
        for name in self.notifiers:
            if name not in active:
                await self.dispatch_channel(name)
        return 0

    async def _check_sources(self, now: datetime) -> int:
        if self.monitor is None or not self.settings.offline_alerts:
            return 0
        return len(await self.monitor.check(now))

    async def dispatch_once(self) -> int:
        """One pass over every channel (tests and tools)."""
        counts = await asyncio.gather(*(self.dispatch_channel(c) for c in self.notifiers))
        return sum(counts)

    async def dispatch_channel(self, channel: str) -> int:
        now = utcnow()
        async with self.db.sessions.begin() as session:
            claimed = await DeliveryRepository(session).claim_due(
                channel, now, self.settings.claim_lease_secs, self.BATCH
            )
            await AlertRepository(session).mark_claimed(
                (d.alert_id for d in claimed if d.stage == DeliveryStage.notify), now
            )
        for index, delivery in enumerate(claimed):
            if self._stopping:
                await self._release(claimed[index:])
                break
            await self._deliver(delivery)
        return len(claimed)

    async def _release(self, deliveries: list[AlertDelivery]) -> None:
        now = utcnow()
        async with self.db.sessions.begin() as session:
            repo = DeliveryRepository(session)
            for d in deliveries:
                await repo.finish(
                    d, now, d.attempts, status=DeliveryStatus.pending.value, attempts=d.attempts - 1
                )
            await self._resummarise(session, {d.alert_id for d in deliveries})

    @staticmethod
    async def _resummarise(session: AsyncSession, alert_ids: set[uuid.UUID]) -> list[Alert]:
        alerts, deliveries = AlertRepository(session), DeliveryRepository(session)
        out = []
        for alert_id in sorted(alert_ids):
            alert = await alerts.get_for_update(alert_id)
            if alert is not None:
                summarise(alert, await deliveries.for_alert(alert_id))
                out.append(alert)
        return out

    def _backoff(self, attempts: int) -> float:
        return min(
            self.settings.retry_max_secs,
            self.settings.retry_base_secs * 2 ** (max(attempts, 1) - 1),
        )

    def _outcome_values(self, delivery: AlertDelivery, result: DeliveryResult) -> dict[str, Any]:
        now = utcnow()
        if result.outcome == DeliveryOutcome.delivered:
            return {"status": DeliveryStatus.sent.value, "sent_at": now, "last_error": None}
        if result.outcome == DeliveryOutcome.unconfigured:
            return {"status": DeliveryStatus.undeliverable.value, "last_error": result.detail}
        if result.outcome == DeliveryOutcome.retry:
            if delivery.attempts < self.settings.max_attempts:
                return {
                    "status": DeliveryStatus.pending.value,
                    "next_attempt_at": now + timedelta(seconds=self._backoff(delivery.attempts)),
                    "last_error": result.detail,
                }
            return {
                "status": DeliveryStatus.failed.value,
                "last_error": f"gave up after {delivery.attempts} attempts: {result.detail}",
            }
        return {"status": DeliveryStatus.failed.value, "last_error": result.detail}

    async def _deliver(self, delivery: AlertDelivery) -> None:
        channel = delivery.channel
        incident: Incident | None = None
        async with self.db.sessions() as session:
            alert = await AlertRepository(session).get(delivery.alert_id)
            if alert is not None and alert.incident_id is not None:
                incident = await IncidentRepository(session).get(alert.incident_id)
        if alert is None:  # deleted meanwhile (cascade): nothing to send
            return
        stage, _ = parse_stage(delivery.stage)
        if stage == DeliveryStage.escalation and incident is not None and incident.acked_at:
            # Acknowledged after this step was claimed: it is moot.
            result = DeliveryResult.failed("acknowledged")
            values: dict[str, Any] = {
                "status": DeliveryStatus.cancelled.value,
                "last_error": f"acknowledged at {incident.acked_at.isoformat()}",
            }
        else:
            ack_url = None
            if (
                incident is not None
                and incident.acked_at is None
                and stage != DeliveryStage.resolve
                and self.ack_links is not None
            ):
                ack_url = self.ack_links.url(incident.id, channel)
            try:
                result = await self.notifiers[channel].send(
                    self.renderer.message(alert, delivery.stage, incident, ack_url)
                )
            except Exception as exc:  # e.g. the database blipped while loading Kakao tokens
                logger.warning(
                    "alert {} ({}) delivery error: {}", alert.id, channel, type(exc).__name__
                )
                result = DeliveryResult.retry(f"internal error: {type(exc).__name__}")
            values = self._outcome_values(delivery, result)
        now = utcnow()
        failure_alert: Alert | None = None
        async with self.db.sessions.begin() as session:
            recorded = await DeliveryRepository(session).finish(
                delivery, now, delivery.attempts, **values
            )
            if recorded:
                [summary] = await self._resummarise(session, {alert.id}) or [alert]
                if (
                    values["status"] == DeliveryStatus.failed
                    and delivery.stage == DeliveryStage.notify
                    and alert.kind != AlertKind.delivery_failure
                ):
                    failure_alert = await self.alerts.record(
                        session,
                        kind=AlertKind.delivery_failure,
                        source_id=alert.source_id,
                        now=now,
                        label=channel,
                        exclude_channels=frozenset({channel}),
                    )
        if not recorded:
            logger.warning(
                "alert {} ({}) was reclaimed before its outcome was recorded", alert.id, channel
            )
            return
        status = values["status"]
        ALERTS.labels(status="retry" if status == "pending" else status).inc()
        outcome = "retry" if status == DeliveryStatus.pending else getattr(status, "value", status)
        ALERT_DELIVERIES.labels(channel, str(outcome)).inc()
        if status == DeliveryStatus.sent:
            ALERT_DELIVERY_LATENCY.observe((now - alert.created_at).total_seconds())
        logger.info("alert {} {} → {} (attempt {})", alert.id, channel, status, delivery.attempts)
        if failure_alert is not None and failure_alert.status == AlertStatus.pending:
            self.wake()
        if self.event_index is not None and alert.episode_id is not None:
            # The episode's summary carries the alert status.
            self.event_index.schedule([alert.episode_id])
        await self.stream.publish(
            "alert",
            {
                "id": str(alert.id),
                "kind": alert.kind,
                "episode_id": str(alert.episode_id) if alert.episode_id else None,
                "source_id": alert.source_id,
                "status": summary.status,
                "channel": channel,
                "stage": delivery.stage,
                "delivery_status": status,
                "attempts": delivery.attempts,
                "last_error": values.get("last_error"),
            },
        )

    def _configuration_problems(self) -> list[str]:
        """Channels in ALERT_CHANNELS that lack their settings, and whether any is left; each
        names the setting to set (never a value)."""
        enabled = [name for name in self.settings.channel_names if name in self.notifiers]
        missing = [name for name in enabled if not self.notifiers[name].configured]
        problems = [
            f"{name} is in ALERT_CHANNELS but not configured: set "
            f"{CHANNEL_SETTINGS.get(name, 'its settings')}"
            for name in missing
        ]
        if not enabled:
            problems.insert(0, RECORD_ONLY)
        elif len(missing) == len(enabled):
            names = ", ".join(enabled)
            problems.insert(
                0,
                f"no channel in ALERT_CHANNELS ({names}) is configured: alerts would go nowhere",
            )
        return problems

    async def health(self) -> AlertsHealth:
        """`degraded` (with the reasons) when a channel in ALERT_CHANNELS lacks its settings,
        none has them, or a channel's last FAILING_STREAK deliveries that reached its provider
        all failed; `disabled` / `down` (dispatcher off / stopped) take precedence."""
        async with self.db.sessions() as session:
            repo = DeliveryRepository(session)
            pending, oldest, per_channel = await repo.pending_stats()
            outcomes = await repo.recent_outcomes(list(self.notifiers), FAILING_STREAK)
        enabled = set(self.settings.channel_names)
        channels: dict[str, ChannelHealth] = {}
        reasons = self._configuration_problems()
        for name, notifier in self.notifiers.items():
            failures = list(itertools.takewhile(lambda o: o[0] == "failed", outcomes[name]))
            channels[name] = ChannelHealth(
                enabled=name in enabled,
                configured=notifier.configured,
                pending=per_channel.get(name, 0),
                recent_failures=len(failures),
                last_error=failures[0][1] if failures else None,
            )
            if len(failures) >= FAILING_STREAK:
                reasons.append(
                    f"{name} failed its last {len(failures)} deliveries: {failures[0][1]}"
                )
        if not self.settings.dispatcher_enabled:
            status = "disabled"
        elif not self.running:
            status = "down"
        elif not enabled:
            # Record only (ALERT_CHANNELS empty, the default): a choice, said with its reason,
            # not a fault; `degraded` is for channels named but unable to deliver.
            status = "disabled"
        else:
            status = "degraded" if reasons else "healthy"
        extra: dict[str, Any] = (
            {"reason": "; ".join(reasons), "reasons": reasons} if reasons else {}
        )
        return AlertsHealth(
            status=status,
            dispatcher_running=self.running,
            pending=pending,
            oldest_pending_age_secs=round((utcnow() - oldest).total_seconds(), 3)
            if oldest
            else None,
            kakao_configured=self.settings.kakao_configured,
            channels=channels,
            **extra,
        )


__all__ = [
    "QUIET",
    "AlertDispatcher",
    "AlertService",
    "CredentialStore",
    "KakaoNotConfigured",
    "KakaoNotifier",
    "alert_out",
    "summarise",
]
