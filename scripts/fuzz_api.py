"""Fuzz every operation of Sentinel's own OpenAPI with schemathesis against a live server.

    uv run python scripts/fuzz_api.py [--max-examples 25] [--seed 1]

Starts `sentinel serve` on a free loopback port (temporary SQLite, or DATABASE_URL /
REDIS_URL when given), registers a user, and runs `schemathesis run` on all operations
with that user's bearer token. Fails on any 5xx or a response that does not match its
declared schema, status codes, content type or headers.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", default="2")
    parser.add_argument("--phases", default="examples,coverage,fuzzing")
    parser.add_argument("--checks", default=CHECKS)
    args = parser.parse_args()

    env = {k: v for k in ("DATABASE_URL", "REDIS_URL") if (v := os.environ.get(k))}
    if env.get("REDIS_URL"):
        env["REDIS_KEY_PREFIX"] = f"sentinel-fuzz-{uuid.uuid4().hex[:8]}:"
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
        ]
        # cwd: schemathesis leaves a cache folder behind; keep it out of the repository.
        result = subprocess.run(command, check=False, cwd=server.workdir)  # noqa: S603
        if result.returncode != 0:
            print("--- server log (tail) ---\n" + server.log(), file=sys.stderr)
        return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
