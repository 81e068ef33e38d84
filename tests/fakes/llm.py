"""A fake LLM provider: a real HTTP server on 127.0.0.1 speaking Gemini REST and OpenAI Chat
Completions, with scripted replies per model and a call counter per model.

    fake = FakeLLMServer().start()
    fake.script("gemini-2.5-flash", Reply.quota_per_day(retry_delay="40s"))
    fake.default["gemini-2.5-flash-lite"] = Reply.ok("answer [1]")
    ... GEMINI_BASE_URL=fake.url, OPENAI_BASE_URL=fake.url + "/v1" ...
    assert fake.calls["gemini-2.5-flash"] == 1
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_GEMINI_PATH = re.compile(
    r"^/v1beta/models/(?P<model>[^:/]+):(?P<op>generateContent|streamGenerateContent)"
)


@dataclass
class Reply:
    """One scripted reply. `kind`: ok, quota_day, rate_minute, error_500, auth_401, auth_403,
    bad_400, insufficient_quota, break_stream (sends `tokens_before_break` tokens, then drops)."""

    kind: str = "ok"
    text: str = "Call the resident within two minutes [1]."
    delay: float = 0.0
    retry_delay: str | None = None
    tokens_before_break: int = 1
    chunk_tokens: list[str] = field(default_factory=list)

    @classmethod
    def ok(
        cls, text: str = "Call the resident within two minutes [1].", delay: float = 0.0
    ) -> Reply:
        return cls("ok", text=text, delay=delay)

    @classmethod
    def quota_per_day(cls, retry_delay: str | None = "37s") -> Reply:
        return cls("quota_day", retry_delay=retry_delay)

    @classmethod
    def rate_per_minute(cls, retry_delay: str | None = None) -> Reply:
        return cls("rate_minute", retry_delay=retry_delay)

    def tokens(self) -> list[str]:
        if self.chunk_tokens:
            return self.chunk_tokens
        words = self.text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def _gemini_error(code: int, status: str, message: str, details: list[dict] | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def gemini_error_body(reply: Reply, model: str) -> tuple[int, dict]:
    if reply.kind in ("quota_day", "rate_minute"):
        per_day = reply.kind == "quota_day"
        quota_id = (
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
            if per_day
            else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
        )
        details: list[dict] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": quota_id,
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": "250" if per_day else "10",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
        ]
        if reply.retry_delay:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": reply.retry_delay,
                }
            )
        return 429, _gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            details,
        )
    if reply.kind == "error_500":
        return 500, _gemini_error(500, "INTERNAL", "An internal error has occurred.")
    if reply.kind == "auth_401":
        return 401, _gemini_error(
            401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
        )
    if reply.kind == "auth_403":
        return 403, _gemini_error(
            403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."
        )
    if reply.kind == "bad_400":
        return 400, _gemini_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
    raise ValueError(f"no Gemini error for {reply.kind}")


def openai_error_body(reply: Reply) -> tuple[int, dict]:
    def err(message: str, type_: str, code: str | None) -> dict:
        return {"error": {"message": message, "type": type_, "param": None, "code": code}}

    if reply.kind in ("insufficient_quota", "quota_day"):
        return 429, err(
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )
    if reply.kind == "rate_minute":
        return 429, err("Rate limit reached for requests", "requests", "rate_limit_exceeded")
    if reply.kind == "error_500":
        return 500, err(
            "The server had an error while processing your request.", "server_error", None
        )
    if reply.kind in ("auth_401", "auth_403"):
        code = 401 if reply.kind == "auth_401" else 403
        return code, err("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
    if reply.kind == "bad_400":
        return 400, err("Invalid 'messages'.", "invalid_request_error", None)
    raise ValueError(f"no OpenAI error for {reply.kind}")


class FakeLLMServer:
    """Gemini + OpenAI fake on 127.0.0.1 (a thread per connection)."""

    def __init__(self) -> None:
        self.scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self.default: dict[str, Reply] = {}
        self.fallback_default = Reply.ok()
        self.calls: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------

    def script(self, model: str, *replies: Reply) -> None:
        with self._lock:
            self.scripts[model].extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.scripts.clear()
            self.default.clear()
            self.fallback_default = Reply.ok()
            self.calls.clear()
            self.requests.clear()

    def _next(self, model: str, body: dict[str, Any], path: str) -> Reply:
        with self._lock:
            self.calls[model] += 1
            self.requests.append({"model": model, "path": path, "body": body})
            queue = self.scripts.get(model)
            if queue:
                return queue.popleft()
            return self.default.get(model, self.fallback_default)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeLLMServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: without TCP_NODELAY, Nagle plus delayed ACKs
            # add ~40 ms to every reply.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                return

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _sse(self, events: list[bytes], broken: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in events:
                    self._chunk(event)
                if broken:
                    # Drop the connection without the final chunk: a truncated stream.
                    self.close_connection = True
                    return
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                match = _GEMINI_PATH.match(self.path)
                if match:
                    self._gemini(match["model"], match["op"] == "streamGenerateContent", body)
                elif self.path.startswith("/v1/chat/completions"):
                    self._openai(body)
                else:
                    self._json(404, {"error": {"code": 404, "message": "not found"}})

            def _gemini(self, model: str, stream: bool, body: dict) -> None:
                reply = fake._next(model, body, self.path)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.kind not in ("ok", "break_stream"):
                    self._json(*gemini_error_body(reply, model))
                    return
                usage = {
                    "promptTokenCount": 42,
                    "candidatesTokenCount": len(reply.tokens()),
                    "totalTokenCount": 42 + len(reply.tokens()),
                }

                def piece(text: str, last: bool) -> dict:
                    cand: dict[str, Any] = {
                        "content": {"parts": [{"text": text}], "role": "model"},
                        "index": 0,
                    }
                    if last:
                        cand["finishReason"] = "STOP"
                    out: dict[str, Any] = {"candidates": [cand], "modelVersion": model}
                    if last:
                        out["usageMetadata"] = usage
                    return out

                if not stream:
                    if reply.kind == "break_stream":
                        self._json(500, _gemini_error(500, "INTERNAL", "broken"))
                        return
                    self._json(200, piece(reply.text, True))
                    return
                tokens = reply.tokens()
                broken = reply.kind == "break_stream"
                if broken:
                    tokens = tokens[: reply.tokens_before_break]
                events = [
                    b"data: "
                    + json.dumps(piece(t, i == len(tokens) - 1 and not broken)).encode()
                    + b"\r\n\r\n"
                    for i, t in enumerate(tokens)
                ]
                self._sse(events, broken)

            def _openai(self, body: dict) -> None:
                model = str(body.get("model"))
                reply = fake._next(model, body, self.path)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.kind not in ("ok", "break_stream"):
                    self._json(*openai_error_body(reply))
                    return
                tokens = reply.tokens()
                usage = {
                    "prompt_tokens": 42,
                    "completion_tokens": len(tokens),
                    "total_tokens": 42 + len(tokens),
                }
                base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model}
                if not body.get("stream"):
                    self._json(
                        200,
                        {
                            **base,
                            "object": "chat.completion",
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": reply.text},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": usage,
                        },
                    )
                    return
                broken = reply.kind == "break_stream"
                if broken:
                    tokens = tokens[: reply.tokens_before_break]
                chunks = [
                    {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}],
                    }
                    for t in tokens
                ]
                if not broken:
                    chunks.append(
                        {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                    )
                events = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
                if not broken:
                    events.append(b"data: [DONE]\n\n")
                self._sse(events, broken)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
