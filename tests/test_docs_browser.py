"""/docs and /redoc render in headless Chromium from Sentinel's own assets, with no request
to another host (the page must work on a machine without internet).

Needs Debian's `chromium` and `chromium-driver` (`.ci/system-deps` installs them). A missing
browser FAILS this test: it never skips.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.live_server import LiveServer

CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    srv = LiveServer({}).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    binary = shutil.which("chromium")
    if binary is None or not Path(CHROMEDRIVER).exists():
        pytest.fail(
            "headless Chromium is required for the /docs test: run .ci/system-deps "
            "(apt-get install -y chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _requested_hosts(driver: webdriver.Chrome, attempts: set[str] | None = None) -> set[str]:
    """Hosts the page sent a request to (requests the page's CSP blocked never left); every
    host it tried, blocked or not, is added to `attempts`."""
    sent: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if url.startswith(("http://", "https://")):
                sent[params["requestId"]] = urlsplit(url).netloc
        elif message.get("method") == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    if attempts is not None:
        attempts.update(sent.values())
    return {host for request_id, host in sent.items() if request_id not in blocked}


def test_swagger_ui_renders_operations_from_local_assets(
    server: LiveServer, browser: webdriver.Chrome
) -> None:
    browser.get(server.url + "/docs")
    WebDriverWait(browser, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 10
    )
    summaries = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
    assert "/api/v1/events" in " ".join(summaries).replace("\u200b", "")
    assert _requested_hosts(browser) == {urlsplit(server.url).netloc}


def test_redoc_renders_operations_from_local_assets(
    server: LiveServer, browser: webdriver.Chrome
) -> None:
    browser.get(server.url + "/redoc")
    WebDriverWait(browser, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")) > 10
    )
    tried: set[str] = set()
    assert _requested_hosts(browser, tried) == {urlsplit(server.url).netloc}
    # Not even a blocked attempt (a CSP violation in the console) at ReDoc's badge CDN.
    assert tried == {urlsplit(server.url).netloc}, tried


def test_docs_pages_reference_no_other_host(server: LiveServer) -> None:
    for path in ("/docs", "/redoc"):
        html = httpx.get(server.url + path).text
        assert "cdn.jsdelivr" not in html and "fonts.googleapis" not in html
        assert "https://" not in html.replace("https://fastapi.tiangolo.com", "")
    favicon = httpx.get(server.url + "/favicon.ico")
    assert favicon.status_code == 200 and favicon.headers["content-type"] == "image/png"


def test_serve_prints_the_not_set_warning_once(server: LiveServer) -> None:
    # The live server has no ACCESS_TOKEN: `sentinel serve` warns, the app it starts does not again.
    assert server.log().count("not set: fine for development") == 1, server.log()
