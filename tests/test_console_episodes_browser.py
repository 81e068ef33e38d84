"""The console as a newcomer acts from it (issue 26, point 7), in headless Debian Chromium
(Selenium) against a live `sentinel serve` in production mode, in Korean, in Seoul's time zone:
the Live view opens on a backlog of recent events (no duplicates when it reloads or the stream
sends them again); an episode opens with its facts (local, humanised times; the frames stored
for the model) and its events, paged with "More"; the recent alerts table has a kind column and
shows the record-only default's last error in Korean, a stored UUID shortened (whole in the
title) and a stored UTC time in local time; the /health banner gives its reason in Korean.
On PostgreSQL + Redis the server shares the suite's database and Redis (the backlog is read
from Redis's recent list); embedded, it runs on its own SQLite file without Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from app.schemas.behavior import examples
from tests.conftest import REDIS_PREFIX
from tests.eventing import event
from tests.live_server import LiveServer
from tests.test_console_browser import PASSWORD, PRODUCTION_ENV, SERVICE_TOKEN, _browser, _shot
from tests.test_console_browser import _sign_in as _sign_in_page
from tests.test_console_incidents_browser import _wait as _poll

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

PROBS = {"badminton": 0.05, "running": 0.85, "standing": 0.05, "walking": 0.05}
MIDDLE = 53  # PROBS events between START and END: 55 in all, more than one page of 50
SEOUL = "Asia/Seoul"


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    """The suite's backend: on PostgreSQL + Redis the server shares this session's migrated
    database and Redis (under this session's key prefix, so the backlog comes from Redis's
    recent list and the stream through its pub/sub); embedded, its own SQLite file, no Redis."""
    # ALERT_CHANNELS empty (the default, said explicitly): every alert is recorded only and
    # ends `undeliverable` with the record-only reason as its last error.
    env = {**PRODUCTION_ENV, "ALERT_CHANNELS": ""}
    if database_url.startswith("postgresql"):
        env |= {"DATABASE_URL": database_url, "DB_MIGRATE_ON_START": "false"}
    if redis_url:
        env |= {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": REDIS_PREFIX}
    live = LiveServer(env).start(timeout=420)
    yield live
    live.kill()


@pytest.fixture(scope="module")
def service(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(SERVICE_TOKEN, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def viewer(service: httpx.Client) -> str:
    """A new account is a viewer: everything here is reading."""
    email = f"viewer-{uuid.uuid4().hex[:6]}@example.com"
    r = service.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email


def _post(service: httpx.Client, body: dict[str, object]) -> dict[str, Any]:
    r = service.post("/api/v1/events", json=body)
    assert r.status_code == 202, r.text
    return r.json()


def _running_episode(service: httpx.Client, source: str, middle: int) -> tuple[str, str]:
    """START with 100 running frames (6 features), `middle` PROBS events, END: an abnormal
    episode (one alert). Returns the episode's id and the END event's id."""
    frames = examples()["running"]["sequence"]
    start = datetime.now(UTC) - timedelta(seconds=middle + 30)
    episode_id = _post(service, event("START", source, at=start, sequence=frames))["episode_id"]
    if middle:
        batch = [
            event("PROBS", source, at=start, seconds=1 + n, probs=PROBS) for n in range(middle)
        ]
        r = service.post("/api/v1/events/batch", json={"events": batch})
        assert r.status_code == 202 and r.json()["accepted"] == middle, r.text
    end = _post(service, event("END", source, at=start, seconds=middle + 2))
    assert end["episode_id"] == episode_id, end
    return episode_id, end["id"]


def _wait(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll `check` until it is truthy, retrying rows that are redrawn or not there yet."""
    return _poll(check, timeout)


def _click(driver: WebDriver, selector: str) -> None:
    def click() -> bool:
        driver.find_element(By.CSS_SELECTOR, selector).click()
        return True

    _wait(click)


def _tab(driver: WebDriver, view: str) -> None:
    _click(driver, f'.tabs button[data-view="{view}"]')


def _feed_keys(driver: WebDriver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#feed li')].map((li) => li.dataset.key);"
    )


def _fact(driver: WebDriver, key: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f'#episode-facts dd[data-fact="{key}"]').text


def _local(driver: WebDriver, iso: str) -> str:
    """How the page writes a UTC time in the browser's zone (Korean)."""
    return driver.execute_script(
        "return new Date(arguments[0]).toLocaleString('ko-KR', { hour12: false });", iso
    )


def test_korean_console_shows_backlog_episode_detail_and_translated_alerts(
    server, service, viewer, redis_url, clean_state
):
    source = f"cam-{uuid.uuid4().hex[:6]}"
    episode_id, end_id = _running_episode(service, source, MIDDLE)
    # A second abnormal episode inside the grouping window joins the first one's incident:
    # its stored last error names the incident's UUID and its UTC opening time.
    _running_episode(service, source, 0)
    episode = service.get(f"/api/v1/episodes/{episode_id}").json()
    assert episode["status"] == "closed" and episode["decision"] == "abnormal", episode
    assert episode["event_count"] == MIDDLE + 2 and episode["sequence_length"] == 100, episode
    alerts = service.get("/api/v1/alerts", params={"source_id": source}).json()["items"]
    by_status = {a["status"]: a for a in alerts}
    assert set(by_status) == {"undeliverable", "grouped"}, alerts
    recorded, grouped = by_status["undeliverable"], by_status["grouped"]
    assert recorded["last_error"].startswith("ALERT_CHANNELS is empty"), recorded
    incident_id = recorded["incident_id"]
    assert incident_id and incident_id in grouped["last_error"], grouped
    # Where the Live backlog comes from: Redis's recent list when the suite runs with Redis.
    recent = service.get("/api/v1/events/recent", params={"limit": 1}).json()
    assert recent["served_from"] == ("redis" if redis_url else "database"), recent

    driver = _browser(lang="ko-KR")
    try:
        # The page in Seoul's time zone, so "local time" differs from the stored UTC.
        driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": SEOUL})
        _sign_in_page(driver, server.url, viewer)

        # Live: the backlog is there before any new event arrives, once each.
        _tab(driver, "live")
        end_item = f'#feed li.backlog[data-id="{end_id}"]'
        _wait(lambda: driver.find_element(By.CSS_SELECTOR, end_item))
        assert source in driver.find_element(By.CSS_SELECTOR, end_item).text
        _wait(
            lambda: (
                driver.find_element(By.ID, "stream-state").get_attribute("data-state")
                == "connected"
            )
        )
        # A new event comes on top through the stream; reopening the view reloads the
        # backlog (which now holds that event too) without adding anything twice.
        fresh = _post(service, event("START", f"cam-{uuid.uuid4().hex[:6]}", at=datetime.now(UTC)))
        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, f'#feed li[data-id="{fresh["id"]}"]'))
        first = driver.find_element(By.CSS_SELECTOR, "#feed li")
        assert first.get_attribute("data-id") == fresh["id"]
        before = _feed_keys(driver)
        _tab(driver, "sources")
        _tab(driver, "live")
        _wait(
            lambda: driver.execute_script(
                "return !document.getElementById('feed-error').textContent"
            )
        )
        keys = _feed_keys(driver)
        assert len(keys) == len(set(keys)) and len(keys) >= len(before), keys
        # An event sent again by the stream (a reconnect) adds nothing either.
        driver.execute_script(
            "handleEvent('event', JSON.stringify({id: arguments[0], source_id: 'x', "
            "event_type: 'PROBS', timestamp: new Date().toISOString()}));",
            fresh["id"],
        )
        assert _feed_keys(driver).count(f"event:{fresh['id']}") == 1
        _shot(driver, "console-live-backlog-ko.png")

        # Episodes: the row opens the detail with its facts and first page of events.
        _tab(driver, "episodes")
        _click(driver, f'#episodes button.episode-open[data-id="{episode_id}"]')
        detail = _wait(lambda: driver.find_element(By.ID, "episode-detail"))
        _wait(lambda: detail.is_displayed() and _fact(driver, "frames") == "100")
        assert detail.get_attribute("data-id") == episode_id
        assert _fact(driver, "source") == source
        assert _fact(driver, "events") == str(MIDDLE + 2)
        assert _fact(driver, "probsCount") == str(episode["probs_count"])
        assert _fact(driver, "decision") == "이상"
        assert _fact(driver, "closeReason") == "END 수신"
        started = _fact(driver, "started")
        assert started.startswith(_local(driver, episode["started_at"])) and "전)" in started
        rows = "#episode-events tr.episode-event"
        _wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, rows)) == 50)
        assert driver.find_element(By.ID, "episode-more").is_displayed()
        _click(driver, "#episode-more")
        _wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, rows)) == MIDDLE + 2)
        assert not driver.find_element(By.ID, "episode-more").is_displayed()
        types = [r.get_attribute("data-type") for r in driver.find_elements(By.CSS_SELECTOR, rows)]
        assert types[0] == "END" and types[-1] == "START", types
        assert types.count("PROBS") == MIDDLE, types
        ids = [r.get_attribute("data-id") for r in driver.find_elements(By.CSS_SELECTOR, rows)]
        assert len(set(ids)) == len(ids) and end_id in ids
        _shot(driver, "console-episode-ko.png")
        _click(driver, "#episode-close")
        _wait(lambda: not driver.find_element(By.ID, "episode-detail").is_displayed())

        # Alerts: the recent alerts table has a kind column and the last errors in Korean.
        _tab(driver, "alerts")
        row = f'#alerts tr.alert-row[data-id="{recorded["id"]}"]'
        _wait(lambda: driver.find_element(By.CSS_SELECTOR, row))
        heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#alerts thead th")]
        assert heads[0] == "종류" and "마지막 오류" in heads, heads
        assert driver.find_element(By.CSS_SELECTOR, row + " .alert-kind").text == "이상 행동"
        assert driver.find_element(By.CSS_SELECTOR, row + " .alert-status").text == "발송 불가"
        error = driver.find_element(By.CSS_SELECTOR, row + " .alert-error")
        assert error.text.startswith("ALERT_CHANNELS가 비어 있어 알림은 기록만 되고"), error.text
        assert error.get_attribute("title") == recorded["last_error"]

        joined = f'#alerts tr.alert-row[data-id="{grouped["id"]}"] .alert-error'
        error = _wait(lambda: driver.find_element(By.CSS_SELECTOR, joined))
        assert error.text.startswith("인시던트 " + incident_id[:8] + "…"), error.text
        assert incident_id not in error.text
        short = error.find_element(By.CSS_SELECTOR, ".uuid")
        assert short.get_attribute("title") == incident_id
        opened = error.find_element(By.TAG_NAME, "time")
        stored = opened.get_attribute("title")
        assert stored and stored in grouped["last_error"] and stored not in error.text
        assert opened.text == _local(driver, opened.get_attribute("datetime"))
        assert driver.execute_script("return new Date().getTimezoneOffset()") == -540
        # The /health banner says why nothing is sent, in Korean too (the stored text in the title).
        health = service.get("/health").json()["services"]["alerts"]
        assert health["reason"] == recorded["last_error"], health
        reason = _wait(lambda: driver.find_element(By.CSS_SELECTOR, "#alerts-health .reason"))
        assert reason.text.startswith("ALERT_CHANNELS가 비어 있어"), reason.text
        assert reason.get_attribute("title") == health["reason"]
        _shot(driver, "console-alerts-ko.png")
    finally:
        driver.quit()
