"""Fuzz every operation of Sentinel's own OpenAPI with schemathesis against a live server.

    uv run python scripts/fuzz_api.py [--max-examples 25] [--seed 1]

Starts `sentinel serve` on a free loopback port (temporary SQLite, or DATABASE_URL /
REDIS_URL when given) with the local fake Kakao and LLM servers from `tests/fakes/` (so
no request leaves the machine and configured integrations answer), registers a user,
and runs `schemathesis run` on all operations with that user's bearer token. Fails on
any 5xx or a response that does not match its declared schema, status codes, content
type or headers. Server-Sent Event streams are left out: they never end by design, and
their own tests cover them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live_server import live_server  # noqa: E402

# Every check except positive_data_acceptance (the password-strength rule, letters and
# digits, cannot be said in JSON Schema, so "schema-valid" passwords are rightly refused)
# and the stateful/resource checks, which need OpenAPI links the API does not declare.
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
    ]
)


def start_fakes() -> tuple[list, dict[str, str]]:
    """The fake Kakao and LLM servers, when this checkout has them."""
    running: list = []
    env: dict[str, str] = {}
    try:
        from tests.fakes.kakao import FakeKakao
    except ImportError:
        pass
    else:
        kakao = FakeKakao()
        kakao.start()
        running.append(kakao)
        env |= {
            "KAKAO_API_BASE_URL": kakao.url,
            "KAKAO_AUTH_BASE_URL": kakao.url,
            "KAKAO_ACCESS_TOKEN": "access-1",
            "KAKAO_REFRESH_TOKEN": "refresh-1",
            "KAKAO_REST_API_KEY": FakeKakao.REST_API_KEY,
        }
    try:
        from tests.fakes.llm import FakeLLMServer
    except ImportError:
        pass
    else:
        llm = FakeLLMServer().start()
        running.append(llm)
        env |= {
            "GEMINI_API_KEY": "fuzz-fake-gemini-key",
            "GEMINI_BASE_URL": llm.url,
            "OPENAI_API_KEY": "fuzz-fake-openai-key",
            "OPENAI_BASE_URL": llm.url + "/v1",
        }
    return running, env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    # One worker: hypothesis is not thread-safe in its lambda-source cache (runtime errors).
    parser.add_argument("--workers", default="1")
    parser.add_argument("--phases", default="examples,coverage,fuzzing")
    parser.add_argument("--checks", default=CHECKS)
    args = parser.parse_args()

    fakes, env = start_fakes()
    env |= {k: v for k in ("DATABASE_URL", "REDIS_URL") if (v := os.environ.get(k))}
    if env.get("REDIS_URL"):
        env["REDIS_KEY_PREFIX"] = f"sentinel-fuzz-{uuid.uuid4().hex[:8]}:"
    try:
        return run(args, env)
    finally:
        for fake in fakes:
            fake.stop()


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    with live_server(env) as server:
        email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
        password = "fuzz-pass-" + uuid.uuid4().hex[:8]
        r = httpx.post(
            server.url + "/api/v1/auth/register", json={"email": email, "password": password}
        )
        r.raise_for_status()
        r = httpx.post(
            server.url + "/api/v1/auth/login", data={"username": email, "password": password}
        )
        r.raise_for_status()
        token = r.json()["access_token"]
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            server.url + "/openapi.json",
            "--checks",
            args.checks,
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            str(args.max_examples),
            "--seed",
            str(args.seed),
            "--workers",
            args.workers,
            "--phases",
            args.phases,
            "--request-timeout",
            "15",
            "--suppress-health-check",
            "all",
            "--no-shrink",
            "--exclude-path-regex",
            "/stream$",
        ]
        # cwd: schemathesis leaves a cache folder behind; keep it out of the repository.
        result = subprocess.run(command, check=False, cwd=server.workdir)  # noqa: S603
        if result.returncode != 0:
            print("--- server log (tail) ---\n" + server.log(), file=sys.stderr)
        return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
