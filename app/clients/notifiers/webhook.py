"""Generic JSON webhook, signed so the receiver can prove Sentinel sent it.

`POST <WEBHOOK_URL>` with a JSON body and:
- `X-Sentinel-Timestamp: <unix seconds>`
- `X-Sentinel-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, "<timestamp>." + raw body)>`
- `X-Sentinel-Delivery: <alert id>:<stage>` (the same on every retry of one delivery).

A receiver recomputes the HMAC over the timestamp and the raw bytes, compares in constant
time, and refuses timestamps older than a few minutes (replay) and delivery ids it has seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from app.clients.notifiers.base import AlertMessage, DeliveryResult, http_outcome
from app.clients.notifiers.http import NotifierHttp
from app.core.settings import AlertSettings

SIGNATURE_HEADER = "X-Sentinel-Signature"
TIMESTAMP_HEADER = "X-Sentinel-Timestamp"
DELIVERY_HEADER = "X-Sentinel-Delivery"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` over `<timestamp>.<raw body>`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_secs: float = 300
) -> bool:
    """What a receiver does: constant-time compare, and refuse stale timestamps."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_secs and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookNotifier:
    """Posts the alert as JSON, HMAC-signed with `WEBHOOK_SECRET`."""

    name = "webhook"

    def __init__(self, http: NotifierHttp, settings: AlertSettings) -> None:
        self.http = http
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.webhook_url.strip() and self.settings.webhook_secret)

    @staticmethod
    def payload(message: AlertMessage) -> dict[str, object]:
        return {
            "alert_id": str(message.alert_id),
            "kind": message.kind,
            "stage": message.stage,
            "source_id": message.source_id,
            "occurred_at": message.occurred_at.isoformat(),
            "label": message.label,
            "score": message.score,
            "link": message.link,
            "subject": message.subject,
            "text": message.text,
            "incident_id": str(message.incident_id) if message.incident_id else None,
            # One-click acknowledgement (single use, expiring); null once acknowledged.
            "ack_url": message.ack_url,
        }

    async def send(self, message: AlertMessage) -> DeliveryResult:
        if not self.configured:
            return DeliveryResult.unconfigured(
                "the webhook is not configured: set WEBHOOK_URL and WEBHOOK_SECRET"
            )
        body = json.dumps(self.payload(message), ensure_ascii=False, separators=(",", ":"))
        raw = body.encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.settings.webhook_secret, timestamp, raw),
            DELIVERY_HEADER: message.delivery_key,
        }
        try:
            response = await self.http.client.post(
                self.settings.webhook_url.strip(), content=raw, headers=headers
            )
        except httpx.TimeoutException:
            return DeliveryResult.retry("webhook timed out")
        except httpx.HTTPError as exc:
            return DeliveryResult.retry(f"webhook unreachable: {type(exc).__name__}")
        return http_outcome(response.status_code, "webhook", response.text)
