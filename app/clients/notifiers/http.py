"""The shared httpx client of the webhook-style channels (Slack, generic webhook)."""

from __future__ import annotations

import httpx

from app.core.settings import AlertSettings


class NotifierHttp:
    """One pooled client with explicit timeouts; started and closed with the app."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._http: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.settings.http_timeout_secs),
                headers={"User-Agent": "sentinel-alerts"},
                follow_redirects=False,
            )
        return self._http

    async def start(self) -> None:
        _ = self.client

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
