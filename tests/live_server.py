"""Run `sentinel serve` as a real process on a free loopback port (tests, fuzzing, benches).

The server gets a clean environment (nothing from the developer's shell or a `.env`
file leaks in: it runs in a temporary directory) plus what the caller passes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SENTINEL = Path(sys.executable).with_name("sentinel")
# Settings the caller did not ask for must come from defaults, not the shell.
_SCRUB_PREFIXES = (
    "DATABASE_URL",
    "REDIS_",
    "ENVIRONMENT",
    "JWT_",
    "ACCESS_TOKEN",
    "LOG_",
    "RATE_LIMIT_",
    "PROMETHEUS_MULTIPROC_DIR",
    "KAKAO_",
    "GEMINI_",
    "OPENAI_",
    "WORKERS",
    "PORT",
    "HOST",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """One `sentinel serve` process; `url` once started."""

    def __init__(self, env: dict[str, str], workers: int = 1, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.workdir = Path(tempfile.mkdtemp(prefix="sentinel-live-"))
        base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
        self.env = {
            **base,
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'sentinel.db'}",
            "EVENT_LOG_PATH": str(self.workdir / "events.jsonl"),
            "CHROMA_PATH": str(self.workdir / "chroma"),
            "JWT_SECRET": "live-server-jwt-secret-0123456789abcdef0123456789",
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_ENABLED": "false",
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.log_path = self.workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> LiveServer:
        command = [str(SENTINEL), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health/ready", timeout=1).status_code == 200:
                    return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def create_admin(self, password: str) -> str:
        """An administrator made the way operators make one (`sentinel create-admin`, the
        password on stdin); returns the new account's email."""
        email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
        result = subprocess.run(
            [str(SENTINEL), "create-admin", "--email", email],
            input=password + "\n",
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return email

    @contextlib.contextmanager
    def client(self, token: str, timeout: float = 30) -> Iterator[httpx.Client]:
        """An HTTP client to this server that presents `token` (the service token, say)."""
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=timeout) as client:
            yield client

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.terminate(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def live_server(env: dict[str, str] | None = None, workers: int = 1) -> Iterator[LiveServer]:
    server = LiveServer(env or {}, workers=workers).start()
    try:
        yield server
    finally:
        server.stop()
