"""Slack incoming webhook: `POST <SLACK_WEBHOOK_URL>` with `{"text": ...}` → `200 ok`.

Slack answers `400 invalid_payload`, `403 invalid_token`, `404 no_service`,
`410 channel_is_archived` (permanent) or `429`/`5xx` (retry). `&`, `<` and `>` are escaped so
that nothing in a message becomes a link or a mention. A message of an unacknowledged
incident also carries its one-click acknowledgement link as a button.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.clients.notifiers.base import AlertMessage, DeliveryResult, http_outcome
from app.clients.notifiers.http import NotifierHttp
from app.core.settings import AlertSettings

SLACK_TEXT_LIMIT = 3000  # Slack truncates long messages; a section block holds 3000
ACK_BUTTON = "확인(응답) / Acknowledge"


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier:
    """Posts the full alert text to one Slack incoming webhook."""

    name = "slack"

    def __init__(self, http: NotifierHttp, settings: AlertSettings) -> None:
        self.http = http
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.slack_webhook_url.strip())

    @staticmethod
    def payload(message: AlertMessage, text: str) -> dict[str, Any]:
        """`text` alone, or with an acknowledgement link: the text as a section and a link
        button (a plain URL button; `text` stays the notification's fallback)."""
        body: dict[str, Any] = {"text": text, "unfurl_links": False, "unfurl_media": False}
        if message.ack_url:
            button = {
                "type": "button",
                "text": {"type": "plain_text", "text": ACK_BUTTON},
                "url": message.ack_url,
                "action_id": "sentinel-ack",
                "style": "primary",
            }
            body["blocks"] = [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "actions", "elements": [button]},
            ]
        return body

    async def send(self, message: AlertMessage) -> DeliveryResult:
        if not self.configured:
            return DeliveryResult.unconfigured("Slack is not configured: set SLACK_WEBHOOK_URL")
        text = slack_escape(message.text)
        if len(text) > SLACK_TEXT_LIMIT:
            text = text[: SLACK_TEXT_LIMIT - 1] + "…"
        try:
            response = await self.http.client.post(
                self.settings.slack_webhook_url.strip(), json=self.payload(message, text)
            )
        except httpx.TimeoutException:
            return DeliveryResult.retry("Slack webhook timed out")
        except httpx.HTTPError as exc:
            return DeliveryResult.retry(f"Slack webhook unreachable: {type(exc).__name__}")
        return http_outcome(response.status_code, "Slack webhook", response.text)
