"""The one seam every alert channel implements, and the registry the dispatcher reads.

Adding a channel = its module (a class with `name`, `configured` and `send`), one entry in
`ALERT_CHANNEL_NAMES` and the container's registry, and its settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class AlertMessage:
    """Everything a channel needs to tell a person about one alert, already rendered.

    `short_text` fits Kakao's 200 characters; `text` is the full text in every configured
    language with the link; `source_id` is sanitised (no control characters or markup).
    """

    alert_id: uuid.UUID
    kind: str
    stage: str
    source_id: str
    occurred_at: datetime
    label: str | None
    score: float | None
    link: str
    subject: str
    short_text: str
    text: str
    # The incident this message is about, and its one-click acknowledgement link (if any).
    incident_id: uuid.UUID | None = None
    ack_url: str | None = None

    @property
    def delivery_key(self) -> str:
        """Stable per (alert, channel stage): receivers can drop a repeated delivery."""
        return f"{self.alert_id}:{self.stage}"


class DeliveryOutcome(StrEnum):
    """What one delivery attempt achieved; drives the outbox row's next state."""

    delivered = "delivered"
    retry = "retry"  # temporary: network, timeout, 429, 5xx
    failed = "failed"  # permanent: the provider refused the message for good
    unconfigured = "unconfigured"  # the channel's settings are missing


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of `Notifier.send`, with a reason a person can act on (never a secret)."""

    outcome: DeliveryOutcome
    detail: str | None = None

    @classmethod
    def ok(cls) -> DeliveryResult:
        return cls(DeliveryOutcome.delivered)

    @classmethod
    def retry(cls, detail: str) -> DeliveryResult:
        return cls(DeliveryOutcome.retry, detail)

    @classmethod
    def failed(cls, detail: str) -> DeliveryResult:
        return cls(DeliveryOutcome.failed, detail)

    @classmethod
    def unconfigured(cls, detail: str) -> DeliveryResult:
        return cls(DeliveryOutcome.unconfigured, detail)


@runtime_checkable
class Notifier(Protocol):
    """One alert channel. `send` never raises for a delivery problem; it reports it."""

    name: str

    @property
    def configured(self) -> bool: ...

    async def send(self, message: AlertMessage) -> DeliveryResult: ...


class NotifierRegistry(Mapping[str, Notifier]):
    """Channel name → notifier, for every channel Sentinel can deliver to."""

    def __init__(self, notifiers: list[Notifier]) -> None:
        self._by_name = {n.name: n for n in notifiers}

    def __getitem__(self, name: str) -> Notifier:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def configured(self) -> dict[str, bool]:
        return {name: n.configured for name, n in self._by_name.items()}


def http_outcome(status: int, what: str, body: str = "") -> DeliveryResult:
    """Map an HTTP answer of a webhook-style endpoint to an outcome."""
    if 200 <= status < 300:
        return DeliveryResult.ok()
    detail = f"{what} answered HTTP {status}" + (f": {body[:200]}" if body else "")
    if status in (408, 425, 429) or status >= 500:
        return DeliveryResult.retry(detail)
    return DeliveryResult.failed(detail)
