"""The shift digest: one summary per ALERT_DIGEST_AT slot (helper-owned module; INTERFACE:
`DigestKeeper`).

Slots are the ALERT_DIGEST_AT times in ALERT_TIMEZONE. At each housekeeping pass the keeper
takes the latest slot at or before now and, if no digest was written for it, writes the
`digest` alert (source `digest`, routed like any alert: every enabled channel unless a rule
names `digest`) and the slot's `alert_digests` row in one transaction; the row's primary key
makes a second digest for the slot impossible across replicas (the loser's insert fails and
its transaction rolls back, writing nothing).

A digest is written only within `DIGEST_GRACE` of its slot: a server down at 06:00 and back at
06:10 still sends the 06:00 digest, one started at 13:00 does not send it seven hours late.
It counts the period from the previous slot to this one: incidents opened, resolved, and
those still unacknowledged (open at the slot, or opened or resolved in the period); sources
offline now; the five sources with the most alerts in the period. Like any alert it obeys
silences: a silence whose pattern matches `digest` (e.g. `*` during maintenance) holds it back.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from loguru import logger
from sqlalchemy.exc import IntegrityError

from app.core.database import Database
from app.core.settings import AlertSettings
from app.models.alert import AlertDigest, AlertKind
from app.repositories.alerts import DeliveryRepository
from app.repositories.digest import DigestRepository
from app.services.alerts import AlertService

# How long after its slot a digest may still go out.
DIGEST_GRACE = timedelta(hours=1)
# The kinds whose alerts make a source "top" in the digest.
COUNTED_KINDS = (
    AlertKind.abnormal_episode.value,
    AlertKind.source_offline.value,
    AlertKind.source_flapping.value,
)


def digest_slots(now: datetime, times: list[str], zone: str) -> tuple[datetime, datetime] | None:
    """The latest slot at or before `now` and the slot before it (aware datetimes in `zone`),
    or None without ALERT_DIGEST_AT."""
    if not times:
        return None
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    clock = [time.fromisoformat(t) for t in times]
    slots = sorted(
        datetime.combine(today - timedelta(days=back), at, tzinfo=tz)
        for back in range(3)
        for at in clock
    )
    past = [slot for slot in slots if slot <= now]
    return past[-1], past[-2]


def slot_key(slot: datetime) -> str:
    """The slot's stored key, e.g. `2026-12-07T06:00+09:00`."""
    return slot.isoformat(timespec="minutes")


class DigestKeeper:
    """Housekeeper: writes the `digest` alert of each shift change once across replicas."""

    name = "digest"

    def __init__(self, database: Database, settings: AlertSettings, alerts: AlertService) -> None:
        self.db = database
        self.settings = settings
        self.alerts = alerts

    async def run(self, now: datetime) -> int:
        """Write the due slot's digest if nobody has; returns the deliveries it created."""
        slots = digest_slots(now, self.settings.digest_times, self.settings.timezone)
        if slots is None or now - slots[0] > DIGEST_GRACE:
            return 0
        slot, previous = slots
        key = slot_key(slot)
        try:
            async with self.db.sessions.begin() as session:
                digests = DigestRepository(session)
                if await digests.exists(key):
                    return 0
                row = AlertDigest(slot=key, created_at=now)
                digests.add(row)
                await session.flush()  # claims the slot (another replica's insert waits/fails)
                alert = await self.alerts.record(
                    session,
                    kind=AlertKind.digest,
                    source_id="digest",
                    now=now,
                    occurred_at=slot,
                    budgeted=False,
                    data=await self._data(digests, key, previous, slot),
                )
                await session.flush()
                row.alert_id = alert.id
                created = len(await DeliveryRepository(session).for_alert(alert.id))
        except IntegrityError:
            logger.debug("digest {} already written by another process", key)
            return 0
        logger.info("shift digest {} written ({} deliveries)", key, created)
        return created

    @staticmethod
    async def _data(
        digests: DigestRepository, key: str, start: datetime, end: datetime
    ) -> dict[str, object]:
        top = await digests.top_sources(start, end, COUNTED_KINDS)
        return {
            "slot": key,
            "since": slot_key(start),
            "opened": await digests.opened(start, end),
            "resolved": await digests.resolved(start, end),
            "unacknowledged": await digests.unacknowledged(start, end),
            "offline": await digests.offline(),
            "top_sources": [[source, n] for source, n in top],
        }
