"""Loopback stand-ins for the alert channels we cannot reach in tests, speaking their wire
formats: a Slack incoming webhook, a signed-webhook receiver that verifies Sentinel's HMAC
the way a real receiver would, and a real SMTP server (aiosmtpd) — each with scripted
failures.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from email.message import EmailMessage
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeHooks:
    """One HTTP server: `POST /slack/T000/B000/XXX` (Slack-shaped) and `POST /hook` (signed
    webhook, verified with `secret`). `slack` and `webhook` hold what was accepted."""

    SLACK_PATH = "/services/T000/B000/XXXXXXXX"

    def __init__(self, secret: str = "hook-secret-for-tests") -> None:
        self.secret = secret
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self.slack: list[dict[str, Any]] = []
        self.webhook: list[dict[str, Any]] = []
        self.webhook_headers: list[dict[str, str]] = []
        self.slack_requests = 0
        self.webhook_requests = 0
        self.bad_signatures = 0
        self.slack_script: list[tuple[int, str]] = []
        self.webhook_script: list[int] = []
        self.delay_secs = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def slack_url(self) -> str:
        return self.url + self.SLACK_PATH

    @property
    def webhook_url(self) -> str:
        return self.url + "/hook"

    def verify(self, timestamp: str, body: bytes, signature: str) -> bool:
        """What a receiver does with `X-Sentinel-Timestamp` / `X-Sentinel-Signature`."""
        try:
            fresh = abs(time.time() - int(timestamp)) <= 300
        except ValueError:
            return False
        mac = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        return fresh and hmac.compare_digest("sha256=" + mac.hexdigest(), signature)

    async def _slack(self, request: Request) -> Response:
        if self.delay_secs:
            import asyncio

            await asyncio.sleep(self.delay_secs)
        with self._lock:
            self.slack_requests += 1
            if self.slack_script:
                status, text = self.slack_script.pop(0)
                return PlainTextResponse(text, status)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid_payload", 400)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return PlainTextResponse("no_text", 400)
        with self._lock:
            self.slack.append(body)
        return PlainTextResponse("ok")

    async def _hook(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            self.webhook_requests += 1
            if self.webhook_script:
                return JSONResponse({"error": "scripted"}, self.webhook_script.pop(0))
            ok = self.verify(
                request.headers.get("x-sentinel-timestamp", ""),
                raw,
                request.headers.get("x-sentinel-signature", ""),
            )
            if not ok:
                self.bad_signatures += 1
                return JSONResponse({"error": "bad signature"}, 401)
            self.webhook.append(json.loads(raw))
            self.webhook_headers.append(dict(request.headers))
        return JSONResponse({"received": True}, 202)

    def start(self) -> FakeHooks:
        app = Starlette(
            routes=[
                Route(self.SLACK_PATH, self._slack, methods=["POST"]),
                Route("/hook", self._hook, methods=["POST"]),
            ]
        )
        self.port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake hook server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)


class _Handler:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        owner = self.owner
        with owner.lock:
            owner.data_requests += 1
            if owner.script:
                return owner.script.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            owner.messages.append(message)  # type: ignore[arg-type]
            owner.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; `script` holds replies for the next DATA
    commands (e.g. `"451 4.3.0 try again later"`)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.lock = threading.Lock()
        self.reset()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def reset(self) -> None:
        with self.lock:
            self.messages: list[EmailMessage] = []
            self.envelopes: list[tuple[str, list[str]]] = []
            self.script: list[str] = []
            self.data_requests = 0

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
