"""The console in a real browser: headless Debian Chromium driven by Selenium against a live
`sentinel serve`. Signs in, watches a source appear and an event arrive on the live feed.

Chromium and chromedriver come from Debian (`.ci/system-deps`); without them these tests fail.
Set CONSOLE_SCREENSHOT_DIR (e.g. `docs`) to save screenshots of the main views.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.live_server import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SERVICE_TOKEN = "browser-test-service-token-0123456789abcdef"
PASSWORD = "console-pass-1234"
SHOTS = os.environ.get("CONSOLE_SCREENSHOT_DIR", "")


def _browser(
    lang: str = "en-US", width: int = 1280, height: int = 900, phone: bool = False
) -> WebDriver:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(Path(path).name)):
            pytest.fail(
                f"{path} is missing: run .ci/system-deps (apt-get install chromium chromium-driver)"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        f"--lang={lang}",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    if phone:  # a headless window cannot be narrower than 500 px; emulate the phone instead
        metrics = {"width": width, "height": height, "pixelRatio": 1}
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _event(event_type: str, source_id: str, **extra: object) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "source_id": source_id,
        "event_type": event_type,
        "timestamp": datetime.now(UTC).isoformat(),
        **extra,
    }


def _shot(driver: WebDriver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / name))


# A production console server: the gate is on, so the page must sign in and send the token.
PRODUCTION_ENV = {
    "ENVIRONMENT": "production",
    "ACCESS_TOKEN": SERVICE_TOKEN,
    # The login route must be reachable without a token for anyone to sign in.
    "AUTH_EXEMPT_PATHS": "/docs,/openapi.json,/health,/health/*,/console,/console/*,"
    "/api/v1/auth/login",
    # Accounts are made through the API here (production defaults to closed registration).
    "REGISTRATION": "open",
}


@pytest.fixture(scope="module")
def production_server() -> Iterator[LiveServer]:
    """Production mode: the gate is on, so the page must sign in and send the token."""
    server = LiveServer({**PRODUCTION_ENV, "SOURCE_OFFLINE_AFTER_SECS": "60"}).start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def service(production_server: LiveServer) -> Iterator[httpx.Client]:
    with production_server.client(SERVICE_TOKEN, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def account(service: httpx.Client) -> str:
    email = f"operator-{uuid.uuid4().hex[:6]}@example.com"
    r = service.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    driver = _browser()
    yield driver
    driver.quit()


def _sign_in(driver: WebDriver, url: str, email: str) -> None:
    driver.get(url + "/console")
    wait = WebDriverWait(driver, 15)
    wait.until(ec.visibility_of_element_located((By.ID, "login-form")))
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    _shot(driver, "console-sign-in.png")
    driver.find_element(By.ID, "login-submit").click()
    wait.until(ec.visibility_of_element_located((By.ID, "app")))
    assert driver.find_element(By.ID, "who").text == email


def _tab(driver: WebDriver, view: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'.tabs button[data-view="{view}"]').click()


def _stream_connected(driver: WebDriver) -> None:
    WebDriverWait(driver, 15).until(
        lambda d: d.find_element(By.ID, "stream-state").get_attribute("data-state") == "connected"
    )


def test_wrong_password_is_refused_in_the_page(production_server, account, browser):
    browser.get(production_server.url + "/console")
    WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.ID, "login-form")))
    browser.find_element(By.ID, "email").send_keys(account)
    browser.find_element(By.ID, "password").send_keys("not-the-password")
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "login-error").text)
    assert not browser.find_element(By.ID, "app").is_displayed()


def test_signed_in_operator_sees_a_new_source_and_live_events_within_2s(
    production_server, service, account, browser
):
    _sign_in(browser, production_server.url, account)
    _stream_connected(browser)
    source = f"cam-{uuid.uuid4().hex[:6]}"

    _tab(browser, "sources")
    r = service.post("/api/v1/events", json=_event("START", source))
    assert r.status_code == 202, r.text
    WebDriverWait(browser, 10).until(ec.text_to_be_present_in_element((By.ID, "sources"), source))
    row = browser.find_element(By.XPATH, f'//strong[text()="{source}"]/ancestor::tr')
    assert "online" in row.text
    _shot(browser, "console-sources.png")

    _tab(browser, "live")
    probs = {"normal": 0.2, "fall": 0.75, "fight": 0.05}
    body = _event("PROBS", source, probs=probs)
    started = time.monotonic()
    r = service.post("/api/v1/events", json=body)
    assert r.status_code == 202, r.text
    event_id = r.json()["id"]
    WebDriverWait(browser, 2, poll_frequency=0.05).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, f'#feed li[data-id="{event_id}"]'))
    )
    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert source in browser.find_element(By.CSS_SELECTOR, f'#feed li[data-id="{event_id}"]').text
    r = service.post("/api/v1/events", json=_event("END", source, probs=probs))
    assert r.status_code == 202
    _shot(browser, "console-live.png")

    _tab(browser, "episodes")
    WebDriverWait(browser, 10).until(ec.text_to_be_present_in_element((By.ID, "episodes"), source))
    _shot(browser, "console-episodes.png")

    _tab(browser, "overview")
    WebDriverWait(browser, 10).until(
        ec.text_to_be_present_in_element((By.ID, "health"), "database")
    )
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "cache").text)
    _shot(browser, "console-overview.png")


def test_console_speaks_korean_and_fits_a_phone(production_server, account):
    driver = _browser(lang="ko-KR", width=390, height=844, phone=True)
    try:
        _sign_in(driver, production_server.url, account)
        tab = driver.find_element(By.CSS_SELECTOR, '.tabs button[data-view="sources"]')
        assert tab.text == "소스"
        _tab(driver, "sources")
        WebDriverWait(driver, 10).until(
            ec.text_to_be_present_in_element((By.ID, "sources"), "온라인")
        )
        # Nothing wider than the screen: no horizontal scrolling of the page.
        width = driver.execute_script("return document.documentElement.scrollWidth")
        inner = driver.execute_script("return window.innerWidth")
        assert width <= inner, (width, inner)
        _shot(driver, "console-phone-ko.png")
        # Switching language in the page.
        driver.find_element(By.CSS_SELECTOR, '#lang option[value="en"]').click()
        WebDriverWait(driver, 5).until(lambda d: tab.text == "Sources")
    finally:
        driver.quit()


def test_console_works_without_sign_in_in_development():
    server = LiveServer({}).start()
    driver = _browser()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            r = client.post("/api/v1/events", json=_event("START", "cam-dev"))
            assert r.status_code == 202, r.text
        driver.get(server.url + "/console")
        WebDriverWait(driver, 15).until(ec.visibility_of_element_located((By.ID, "app")))
        assert driver.find_element(By.ID, "devmode").is_displayed()
        assert not driver.find_element(By.ID, "login").is_displayed()
        _tab(driver, "sources")
        WebDriverWait(driver, 10).until(
            ec.text_to_be_present_in_element((By.ID, "sources"), "cam-dev")
        )
        _stream_connected(driver)
    finally:
        driver.quit()
        server.kill()
