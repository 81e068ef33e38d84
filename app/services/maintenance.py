"""Maintenance windows: the reminder before a one-off silence ends and the summary of what
it held back once it has ended (helper-owned module; INTERFACE: `MaintenanceKeeper`)."""

from __future__ import annotations

from datetime import datetime

from app.core.database import Database
from app.core.settings import AlertSettings
from app.services.alerts import AlertService


class MaintenanceKeeper:
    """Housekeeper: reminders and end-of-window summaries, once each across processes."""

    name = "maintenance"

    def __init__(self, database: Database, settings: AlertSettings, alerts: AlertService) -> None:
        self.db = database
        self.settings = settings
        self.alerts = alerts

    async def run(self, now: datetime) -> int:
        return 0  # TODO(helper A)
