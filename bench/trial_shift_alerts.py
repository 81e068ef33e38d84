"""Alerting for shift work, tried as a site runs it (issue 28): two `sentinel serve` processes in
production mode on PostgreSQL + Redis, Slack and webhook receivers on loopback, an agent posting a
storm of abnormal episodes from one camera to both processes, and a guard who acknowledges from
the link in the first Slack message in headless Chromium, between the chain's two steps.

    uv run python bench/trial_shift_alerts.py       # ~2 minutes; needs PostgreSQL, Redis, chromium

Prints what each receiver got, per stage, and exits 1 if a message came twice, the chain's second
step went out after the acknowledgement, or the incident did not resolve with one message per
channel. Not a speed bench: the figures are counts and delays.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/sentinel_trial_shift"
REDIS = "redis://127.0.0.1:6379/0"
ABNORMAL = {"normal": 0.1, "fall": 0.85, "fight": 0.05}
GROUP_WINDOW, UPDATE_EVERY = 25, 10
STEP1, STEP2 = 12, 40  # escalation: webhook after 12 s, slack again after 40 s


@dataclass
class Received:
    """What one loopback receiver got: (arrival, JSON body) in order."""

    items: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def receiver(store: Received) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with store.lock:
                store.items.append((time.monotonic(), json.loads(body or b"{}")))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    who: str, env: dict[str, str], tmp: Path, port: int
) -> tuple[subprocess.Popen[bytes], str]:
    log = (tmp / f"server-{who}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server {who} exited (rc {proc.returncode}); see {tmp}")
        try:
            if httpx.get(url + "/health/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server {who} not ready; see {tmp}")


def stages(store: Received, t0: float) -> list[str]:
    """One line per message: arrival second and what it says it is."""
    out = []
    with store.lock:
        items = list(store.items)
    for at, body in items:
        text = body.get("text") or body.get("message") or json.dumps(body, ensure_ascii=False)
        out.append(f"{at - t0:6.1f}s  {' '.join(str(text).split())[:110]}")
    return out


def click_ack(url: str) -> str:
    """Open the link in headless Chromium, read the page, press its one button."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=ko-KR"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "ko-KR,ko"})
    driver = webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options
    )
    try:
        driver.get(url)
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        title = driver.find_element(By.TAG_NAME, "h1")
        before = title.text
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        WebDriverWait(driver, 10).until(expected_conditions.staleness_of(title))
        after = driver.find_element(By.TAG_NAME, "h1").text
        return f"page: {before!r} → after the click: {after!r}".replace("\\n", " / ")
    finally:
        driver.quit()


async def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="trial-shift-"))
    slack, hook = Received(), Received()
    slack_srv, hook_srv = receiver(slack), receiver(hook)
    routes = tmp / "routes.json"
    routes.write_text(
        json.dumps(
            [
                {
                    "source": "*",
                    "channels": ["slack", "webhook"],
                    "escalation": {
                        "steps": [
                            {"after_secs": STEP1, "channels": ["webhook"]},
                            {"after_secs": STEP2, "channels": ["slack"]},
                        ],
                        "repeat": 0,
                    },
                }
            ]
        )
    )
    token = secrets.token_urlsafe(32)
    prefix = f"trial-shift-{uuid.uuid4().hex[:6]}:"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "DB_"))}
    port_a = free_port()
    base.update(
        ENVIRONMENT="production",
        JWT_SECRET=secrets.token_urlsafe(48),
        ACCESS_TOKEN=token,
        DATABASE_URL=PG,
        REDIS_URL=REDIS,
        REDIS_KEY_PREFIX=prefix,
        DB_CREATE_IF_MISSING="true",
        ALERT_CHANNELS="slack,webhook",
        SLACK_WEBHOOK_URL=f"http://127.0.0.1:{slack_srv.server_address[1]}/slack",
        WEBHOOK_URL=f"http://127.0.0.1:{hook_srv.server_address[1]}/hook",
        WEBHOOK_SECRET=secrets.token_urlsafe(24),
        ALERT_ROUTES_FILE=str(routes),
        INCIDENT_GROUP_WINDOW_SECS=str(GROUP_WINDOW),
        INCIDENT_UPDATE_INTERVAL_SECS=str(UPDATE_EVERY),
        ALERT_MONITOR_INTERVAL_SECS="1",
        ALERT_MAX_PER_SOURCE_PER_HOUR="0",
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
        CHROMA_PATH=str(tmp / "chroma"),
        EVENT_LOG_PATH=str(tmp / "events.jsonl"),
    )
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-qc",
            "DROP DATABASE IF EXISTS sentinel_trial_shift",
        ],
        check=True,
    )
    env_a = dict(base, DB_MIGRATE_ON_START="true")
    procs = []
    try:
        # A migrates; B starts on the migrated database. Both dispatch.
        link_url = f"http://127.0.0.1:{port_a}/"
        proc_a, url_a = start("A", dict(env_a, ALERT_LINK_URL=link_url), tmp, port_a)
        procs.append(proc_a)
        env_b = dict(base, DB_MIGRATE_ON_START="false", ALERT_LINK_URL=link_url)
        proc_b, url_b = start("B", env_b, tmp, free_port())
        procs.append(proc_b)
        headers = {"Authorization": f"Bearer {token}"}
        t0 = time.monotonic()
        async with (
            httpx.AsyncClient(headers=headers, timeout=10) as a,
            httpx.AsyncClient(headers=headers, timeout=10) as b,
        ):
            # 8 abnormal episodes from one camera, 1.5 s apart, alternating processes.
            for n in range(8):
                client, url = (a, url_a) if n % 2 == 0 else (b, url_b)
                now = datetime.now(UTC).isoformat()
                for kind in ("START", "PROBS", "END"):
                    body = {
                        "event_id": str(uuid.uuid4()),
                        "source_id": "cam-b1-01",
                        "event_type": kind,
                        "timestamp": now,
                    }
                    if kind != "START":
                        body["probs"] = ABNORMAL
                    r = await client.post(url + "/api/v1/events", json=body)
                    assert r.status_code == 202, r.text
                await asyncio.sleep(1.5)
            # Wait for the first escalation step, then acknowledge from Slack's first message.
            while not any(
                "에스컬레이션" in json.dumps(b_, ensure_ascii=False) for _, b_ in hook.items
            ):
                if time.monotonic() - t0 > STEP1 + 30:
                    print("no escalation step 1 arrived")
                    return 1
                await asyncio.sleep(0.2)
            first = slack.items[0][1]
            link = next(
                el["url"]
                for block in first.get("blocks", [])
                for el in block.get("elements", [])
                if isinstance(el, dict) and "/ack/" in el.get("url", "")
            )
            acked_at = time.monotonic() - t0
            print(
                f"{acked_at:6.1f}s  ack through the first Slack message's link: {click_ack(link)}"
            )
            # Past step 2 and past the quiet window: the incident resolves.
            await asyncio.sleep(max(STEP2 - acked_at, 0) + GROUP_WINDOW + 8)
            r = await a.get(url_a + "/api/v1/incidents", params={"source_id": "cam-b1-01"})
            incidents = r.json()["items"]
        print(
            f"\nincidents for cam-b1-01: {len(incidents)}; "
            + ", ".join(
                f"{i['status']} count={i.get('alert_count', i.get('count'))} acked_via={i.get('acked_via')}"
                for i in incidents
            )
        )
        for name, store in (("slack", slack), ("webhook", hook)):
            print(f"\n{name}: {len(store.items)} messages")
            for line in stages(store, t0):
                print("  " + line)
        detail = (
            await httpx.AsyncClient(headers=headers).get(
                f"{url_a}/api/v1/incidents/{incidents[0]['id']}"
            )
        ).json()
        first_alert = next(x for x in detail["alerts"] if x["id"] == detail["first_alert_id"])
        per = Counter((d["channel"], d["stage"], d["status"]) for d in first_alert["deliveries"])
        print("\ndeliveries of the incident (channel, stage, status):")
        for key, n in sorted(per.items()):
            print(f"  {key}: {n}")
        bad = [k for k, n in per.items() if n > 1]
        late = [
            k for k in per if k[0] == "slack" and k[1].startswith("escalation") and k[2] == "sent"
        ]
        resolved = [k for k in per if k[1] == "resolve" and k[2] == "sent"]
        ok = len(incidents) == 1 and not bad and not late and len(resolved) == 2
        print(
            "\nverdict:",
            "OK"
            if ok
            else f"FAILED (twice: {bad}, step 2 after ack: {late}, resolves: {resolved})",
        )
        return 0 if ok else 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        slack_srv.shutdown()
        hook_srv.shutdown()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
