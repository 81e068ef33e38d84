"""Alert channels: one `Notifier` protocol and a registry mapping channel name → notifier."""

from app.clients.notifiers.base import (
    AlertMessage,
    DeliveryOutcome,
    DeliveryResult,
    Notifier,
    NotifierRegistry,
)

__all__ = ["AlertMessage", "DeliveryOutcome", "DeliveryResult", "Notifier", "NotifierRegistry"]
