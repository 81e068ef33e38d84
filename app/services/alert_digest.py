"""The shift digest: one summary per ALERT_DIGEST_AT slot (helper-owned module; INTERFACE:
`DigestKeeper`)."""

from __future__ import annotations

from datetime import datetime

from app.core.database import Database
from app.core.settings import AlertSettings
from app.services.alerts import AlertService


class DigestKeeper:
    """Housekeeper: writes the `digest` alert of each shift change once across replicas."""

    name = "digest"

    def __init__(self, database: Database, settings: AlertSettings, alerts: AlertService) -> None:
        self.db = database
        self.settings = settings
        self.alerts = alerts

    async def run(self, now: datetime) -> int:
        return 0  # TODO(helper D)
