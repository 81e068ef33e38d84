"""One-click acknowledgement links carried by every alert message.

INTERFACE (kept stable; helper-owned module): `AckLinks(alerts_settings, security_settings)`,
`links.url(incident_id, channel) -> str | None` (None when links cannot be made).
"""

from __future__ import annotations

import uuid

from app.core.settings import AlertSettings, SecuritySettings


class AckLinks:
    """Makes and checks HMAC-signed, single-incident, expiring acknowledgement URLs."""

    def __init__(self, settings: AlertSettings, security: SecuritySettings) -> None:
        self.settings = settings
        self.security = security

    def url(self, incident_id: uuid.UUID, channel: str) -> str | None:
        return None  # TODO(helper B)
