"""Learning from operators in the console, in headless Debian Chromium (Selenium) against a live
`sentinel serve` in production mode: an admin labels an episode from the Episodes view and sees
the model versions; a viewer sees the label and its outcome (in Korean) but no label buttons.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from app.schemas.behavior import examples
from tests.live_server import LiveServer
from tests.test_console_browser import (
    PASSWORD,
    PRODUCTION_ENV,
    SERVICE_TOKEN,
    _browser,
    _shot,
    _sign_in,
    _tab,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """Production mode (sign-in required), as in test_console_browser."""
    live = LiveServer(PRODUCTION_ENV).start()
    yield live
    live.kill()


@pytest.fixture(scope="module")
def service(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(SERVICE_TOKEN, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> str:
    """An administrator, made the way operators make one: `sentinel create-admin`."""
    return server.create_admin(PASSWORD)


@pytest.fixture(scope="module")
def viewer(service: httpx.Client) -> str:
    """A new account is a viewer."""
    email = f"viewer-{uuid.uuid4().hex[:6]}@example.com"
    r = service.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email


def _event(event_type: str, source_id: str, **extra: object) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "source_id": source_id,
        "event_type": event_type,
        "timestamp": datetime.now(UTC).isoformat(),
        **extra,
    }


def _running_episode(service: httpx.Client) -> str:
    """A closed episode the model calls abnormal (100 running-like frames of 6 features)."""
    source = f"cam-{uuid.uuid4().hex[:6]}"
    frames = examples()["running"]["sequence"]
    assert len(frames) == 100 and len(frames[0]) == 6
    r = service.post("/api/v1/events", json=_event("START", source, sequence=frames))
    assert r.status_code == 202, r.text
    episode_id = r.json()["episode_id"]
    r = service.post("/api/v1/events", json=_event("END", source))
    assert r.status_code == 202, r.text
    episode = service.get(f"/api/v1/episodes/{episode_id}").json()
    assert episode["status"] == "closed" and episode["decision"] == "abnormal", episode
    return episode_id


def _row(driver: WebDriver, episode_id: str):
    return WebDriverWait(driver, 15).until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, f'#episodes tr.episode-row[data-id="{episode_id}"]')
        )
    )


def _click_label(driver: WebDriver, episode_id: str, label: str) -> None:
    """Click a label button; the 5-second refresh may replace the row under the click."""
    selector = f'#episodes tr[data-id="{episode_id}"] button.fb-label[data-label="{label}"]'
    for _ in range(5):
        try:
            WebDriverWait(driver, 15).until(
                ec.element_to_be_clickable((By.CSS_SELECTOR, selector))
            ).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.2)
    raise AssertionError("the label button kept being replaced")


def _wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except StaleElementReferenceException:
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_admin_labels_an_episode_and_sees_the_active_model(server, service, admin):
    episode_id = _running_episode(service)
    model = service.get("/api/v1/behavior/model").json()
    assert "standing" in model["labels"] and "standing" in model["normal_labels"]

    driver = _browser()
    try:
        _sign_in(driver, server.url, admin)
        _tab(driver, "episodes")
        row = _row(driver, episode_id)
        labels = [
            b.get_attribute("data-label") for b in row.find_elements(By.CSS_SELECTOR, ".fb-label")
        ]
        assert labels == model["labels"]
        _click_label(driver, episode_id, "standing")

        # Saved through the API: the label, and an abnormal verdict labelled normal is a false alarm.
        saved = _wait_for(
            lambda: (
                service.get(f"/api/v1/episodes/{episode_id}").json().get("feedback") or {}
            ).get("label")
        )
        assert saved == "standing"
        episode = service.get(f"/api/v1/episodes/{episode_id}").json()
        assert episode["feedback_outcome"] == "false_alarm"

        # …and shown in the row: the pressed button and the outcome.
        def shown() -> bool:
            row = _row(driver, episode_id)
            pressed = row.find_elements(By.CSS_SELECTOR, '.fb-label[aria-pressed="true"]')
            outcome = row.find_elements(By.CSS_SELECTOR, ".fb-outcome")
            return (
                [b.get_attribute("data-label") for b in pressed] == ["standing"]
                and bool(outcome)
                and outcome[0].text == "false alarm"
            )

        assert _wait_for(shown), _row(driver, episode_id).text
        _shot(driver, "console-episodes-labels.png")

        # The Models view: the shipped version, active; an admin may retrain.
        _tab(driver, "models")
        active = WebDriverWait(driver, 15).until(
            ec.presence_of_element_located(
                (By.CSS_SELECTOR, '#models tr.model-row[data-status="active"]')
            )
        )
        assert active.get_attribute("data-version") == model["model_version"]
        assert "active" in active.text and "shipped" in active.text
        assert not active.find_elements(By.CSS_SELECTOR, ".model-activate")
        assert driver.find_element(By.ID, "train-submit").is_displayed()
        WebDriverWait(driver, 10).until(
            ec.text_to_be_present_in_element((By.ID, "feedback-summary"), "1")
        )
    finally:
        driver.quit()


def test_viewer_sees_the_label_in_korean_but_no_buttons(server, service, admin, viewer):
    episode_id = _running_episode(service)
    token = httpx.post(
        server.url + "/api/v1/auth/login",
        data={"username": admin, "password": PASSWORD},
        timeout=10,
    ).json()["access_token"]
    r = service.post(
        f"/api/v1/episodes/{episode_id}/feedback",
        json={"label": "standing"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text

    driver = _browser(lang="ko-KR")
    try:
        _sign_in(driver, server.url, viewer)
        _tab(driver, "episodes")
        row = _row(driver, episode_id)
        assert not row.find_elements(By.CSS_SELECTOR, ".fb-label")
        assert row.find_element(By.CSS_SELECTOR, ".fb-current").text == "서 있기"
        assert row.find_element(By.CSS_SELECTOR, ".fb-outcome").text == "오탐"
        assert not driver.find_elements(By.CSS_SELECTOR, "#episodes button.fb-label")

        _tab(driver, "models")
        WebDriverWait(driver, 15).until(
            ec.text_to_be_present_in_element((By.ID, "view-models"), "오탐")
        )
        assert not driver.find_element(By.ID, "train-card").is_displayed()
        assert not driver.find_elements(By.CSS_SELECTOR, "#models button")
    finally:
        driver.quit()


def _activate(driver: WebDriver, version: str, expect_gate: bool = False) -> None:
    """Click the version's Activate / Roll back; past the gate with "Activate anyway" if asked
    (`expect_gate`: it must ask, and show its figures)."""
    driver.find_element(
        By.CSS_SELECTOR, f'#models tr[data-version="{version}"] button.model-activate'
    ).click()
    WebDriverWait(driver, 30).until(
        lambda d: (
            d.find_element(By.ID, "models-notice").text
            or d.find_element(By.ID, "model-gate").is_displayed()
        )
    )
    asked = driver.find_element(By.ID, "model-gate").is_displayed()
    assert asked or not expect_gate, "the gate did not refuse the rollback"
    if asked:
        gate = driver.find_element(By.ID, "model-gate")
        assert version in gate.text and gate.find_element(By.CSS_SELECTOR, ".gate-message").text
        if expect_gate:  # the figures as a table: the held-out feedback, old vs new
            assert "%" in gate.find_element(By.CSS_SELECTOR, "table").text, gate.text
            _shot(driver, "console-models-gate.png")
        gate.find_element(By.CSS_SELECTOR, "button.model-force").click()
    WebDriverWait(driver, 30).until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, f'#models tr[data-version="{version}"][data-status="active"]')
        )
    )
    assert version in driver.find_element(By.ID, "models-notice").text


def test_admin_trains_a_candidate_activates_it_and_rolls_back(server, service, admin):
    token = httpx.post(
        server.url + "/api/v1/auth/login",
        data={"username": admin, "password": PASSWORD},
        timeout=10,
    ).json()["access_token"]
    as_admin = {"Authorization": f"Bearer {token}"}
    for _ in range(8):  # retraining needs 8 labelled episodes with frames
        episode_id = _running_episode(service)
        # The site's "running" is really people standing: every such alert was a false alarm.
        r = service.post(
            f"/api/v1/episodes/{episode_id}/feedback", json={"label": "standing"}, headers=as_admin
        )
        assert r.status_code == 200, r.text
    shipped = service.get("/api/v1/behavior/model").json()["model_version"]

    driver = _browser()
    try:
        _sign_in(driver, server.url, admin)
        _tab(driver, "models")
        WebDriverWait(driver, 15).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#models tr.model-row"))
        )
        driver.find_element(By.ID, "train-submit").click()
        WebDriverWait(driver, 120).until(
            lambda d: (
                d.find_element(By.ID, "train-job").get_attribute("data-state")
                in ("succeeded", "failed")
            )
        )
        job = driver.find_element(By.ID, "train-job")
        assert job.get_attribute("data-state") == "succeeded", job.text
        assert job.get_attribute("data-id") in driver.find_element(By.ID, "train-job-id").text
        candidate = job.find_element(By.CSS_SELECTOR, ".train-done").get_attribute("data-version")
        row = WebDriverWait(driver, 15).until(
            ec.presence_of_element_located(
                (By.CSS_SELECTOR, f'#models tr[data-version="{candidate}"]')
            )
        )
        assert row.get_attribute("data-status") == "candidate"
        assert "%" in row.find_element(By.CSS_SELECTOR, '.figures[data-set="base_test"]').text
        assert row.find_element(By.CSS_SELECTOR, ".model-activate").text == "Activate"

        _activate(driver, candidate)
        assert service.get("/api/v1/models", headers=as_admin).json()["active"] == candidate
        _shot(driver, "console-models.png")
        old = driver.find_element(By.CSS_SELECTOR, f'#models tr[data-version="{shipped}"]')
        assert old.get_attribute("data-status") == "retired"
        assert old.find_element(By.CSS_SELECTOR, ".model-activate").text == "Roll back"

        # The rollback: the shipped version is worse on the held-out labels, so the gate asks.
        _activate(driver, shipped, expect_gate=True)
        assert service.get("/api/v1/models", headers=as_admin).json()["active"] == shipped
    finally:
        driver.quit()
