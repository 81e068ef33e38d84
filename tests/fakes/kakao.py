"""A fake Kakao API (kapi + kauth) on 127.0.0.1, speaking Kakao's wire format, with scripted failures.

Runs a real uvicorn server in a thread so the real `KakaoClient` talks HTTP to it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

EXPIRED = (401, {"msg": "this access token is already expired", "code": -401})
INTERNAL = (500, {"msg": "internal server error", "code": -1})
NO_SCOPE = (403, {"msg": "insufficient scopes.", "code": -402})


class FakeKakao:
    """State and scripted behaviour; `memos` holds every delivered template object."""

    REST_API_KEY = "test-rest-api-key"

    def __init__(self) -> None:
        self.reset()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def reset(self) -> None:
        self.valid_access: set[str] = {"access-1"}
        self.valid_refresh: set[str] = {"refresh-1"}
        self.memos: list[dict[str, Any]] = []
        self.memo_tokens: list[str] = []
        self.memo_script: list[tuple[int, dict[str, Any]]] = []  # popped per memo request
        self.memo_requests = 0
        self.refresh_requests: list[dict[str, str]] = []
        self.rotate_refresh = False
        self.delay_secs = 0.0
        self._counter = itertools.count(2)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next_memos(self, count: int, response: tuple[int, dict[str, Any]] = INTERNAL) -> None:
        self.memo_script.extend([response] * count)

    def expire(self, token: str) -> None:
        self.valid_access.discard(token)

    # --- handlers -------------------------------------------------------------------------

    def _bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return token if scheme == "Bearer" and token else None

    async def _memo(self, request: Request) -> JSONResponse:
        if self.delay_secs:
            await asyncio.sleep(self.delay_secs)
        form = await request.form()
        with self._lock:
            self.memo_requests += 1
            token = self._bearer(request)
            if token is None:
                return JSONResponse({"msg": "no authentication key!", "code": -401}, 401)
            if token not in self.valid_access:
                return JSONResponse(EXPIRED[1], EXPIRED[0])
            if self.memo_script:
                status, body = self.memo_script.pop(0)
                return JSONResponse(body, status)
            raw = form.get("template_object")
            if not isinstance(raw, str):
                return JSONResponse({"msg": "template_object is required", "code": -2}, 400)
            self.memos.append(json.loads(raw))
            self.memo_tokens.append(token)
        return JSONResponse({"result_code": 0})

    async def _token(self, request: Request) -> JSONResponse:
        form = await request.form()
        with self._lock:
            self.refresh_requests.append({k: str(v) for k, v in form.items()})
            if form.get("grant_type") != "refresh_token":
                return JSONResponse(
                    {"error": "unsupported_grant_type", "error_code": "KOE310"}, 400
                )
            if form.get("client_id") != self.REST_API_KEY:
                return JSONResponse(
                    {
                        "error": "invalid_client",
                        "error_description": "Bad client credentials",
                        "error_code": "KOE101",
                    },
                    401,
                )
            if form.get("refresh_token") not in self.valid_refresh:
                return JSONResponse(
                    {
                        "error": "invalid_grant",
                        "error_description": "authorization code not found for code=...",
                        "error_code": "KOE322",
                    },
                    400,
                )
            access = f"access-{next(self._counter)}"
            self.valid_access.add(access)
            body: dict[str, Any] = {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": 21599,
            }
            if self.rotate_refresh:
                refresh = f"refresh-{next(self._counter)}"
                self.valid_refresh = {refresh}
                body |= {"refresh_token": refresh, "refresh_token_expires_in": 5183999}
        return JSONResponse(body)

    async def _token_info(self, request: Request) -> JSONResponse:
        if self._bearer(request) not in self.valid_access:
            return JSONResponse(EXPIRED[1], EXPIRED[0])
        return JSONResponse({"id": 1234567, "expires_in": 21000, "app_id": 7654})

    async def _me(self, request: Request) -> JSONResponse:
        if self._bearer(request) not in self.valid_access:
            return JSONResponse(EXPIRED[1], EXPIRED[0])
        return JSONResponse({"id": 1234567, "connected_at": "2026-11-01T00:00:00Z"})

    # --- server ---------------------------------------------------------------------------

    def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/v2/api/talk/memo/default/send", self._memo, methods=["POST"]),
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/v1/user/access_token_info", self._token_info, methods=["GET"]),
                Route("/v2/user/me", self._me, methods=["GET"]),
            ]
        )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Kakao server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
