"""The console's Ask and Documents views in headless Debian Chromium (Selenium) against a live
`sentinel serve` in production mode, in English and in Korean.

No LLM keys are set, so every answer is the local extract with its notice. Set
CONSOLE_SCREENSHOT_DIR (e.g. `docs`) to save screenshots of both views.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.live_server import LiveServer
from tests.test_console_browser import PASSWORD, SERVICE_TOKEN, _browser, _tab

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

SHOTS = os.environ.get("CONSOLE_SCREENSHOT_DIR", "")
ANSWER_WAIT = 120  # the first question loads the embedding model in the server

DOCS = {
    "en": (
        "Fall alert procedure",
        "# Fall alert procedure\n\n## First response\n\n"
        "When a fall alert fires, call the resident within two minutes. "
        "If nobody answers, send the on-call nurse to the room.\n\n"
        "## Records\n\nAfter the response, write the time and what was done in the shift log.\n",
        "What do we do when a fall alert fires?",
        "two minutes",
        "First response",
    ),
    "ko": (
        "낙상 알림 대응 절차",
        "# 낙상 알림 대응 절차\n\n## 첫 대응\n\n"
        "낙상 알림이 오면 2분 안에 입주자에게 전화합니다. "
        "응답이 없으면 당직 간호사를 방으로 보냅니다.\n\n"
        "## 기록\n\n대응이 끝나면 근무 일지에 시간과 조치를 적습니다.\n",
        "낙상 알림이 오면 무엇을 해야 하나요?",
        "2분 안에",
        "첫 대응",
    ),
}


def _shot(driver: WebDriver, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / name))


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """Production mode (sign-in required), as in test_console_browser; no LLM keys."""
    env = {
        "ENVIRONMENT": "production",
        "ACCESS_TOKEN": SERVICE_TOKEN,
        "AUTH_EXEMPT_PATHS": "/docs,/openapi.json,/health,/health/*,/console,/console/*,"
        "/api/v1/auth/login",
        "REGISTRATION": "open",
    }
    live = LiveServer(env).start()
    yield live
    live.kill()


@pytest.fixture(scope="module")
def viewer(server: LiveServer) -> str:
    """A signed-in person without admin rights (a new account is a viewer)."""
    email = f"viewer-{uuid.uuid4().hex[:6]}@example.com"
    r = httpx.post(
        server.url + "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD},
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return email


def _login(url: str, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = httpx.post(
        url + "/api/v1/auth/login", data={"username": email, "password": password}, timeout=10
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> str:
    """An administrator, made the way operators make one: `sentinel create-admin`."""
    return server.create_admin(PASSWORD)


@pytest.fixture(scope="module")
def documents(server: LiveServer, admin: str) -> dict[str, str]:
    """The two documents the questions are about, by language: their ids."""
    headers = _login(server.url, admin)
    ids = {}
    for lang, (title, content, *_) in DOCS.items():
        r = httpx.post(
            server.url + "/api/v1/knowledge/docs",
            json={"title": title, "content": content},
            headers=headers,
            timeout=120,
        )
        assert r.status_code == 201, r.text
        ids[lang] = r.json()["id"]
    return ids


def _sign_in(driver: WebDriver, url: str, email: str) -> None:
    driver.get(url + "/console")
    wait = WebDriverWait(driver, 15)
    wait.until(ec.visibility_of_element_located((By.ID, "login-form")))
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait.until(ec.visibility_of_element_located((By.ID, "app")))
    wait.until(lambda d: d.find_element(By.ID, "who").text == email)


def _ask(driver: WebDriver, question: str, turns: int) -> WebElement:
    box = driver.find_element(By.ID, "question")
    box.send_keys(question)
    driver.find_element(By.ID, "ask-submit").click()
    WebDriverWait(driver, ANSWER_WAIT).until(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, ".turn[data-state=done]")) == turns
            or d.find_elements(By.CSS_SELECTOR, ".turn[data-state=error]")
        )
    )
    assert not driver.find_elements(By.CSS_SELECTOR, ".turn[data-state=error]"), (
        driver.find_element(By.ID, "thread").text
    )
    return driver.find_elements(By.CSS_SELECTOR, ".turn")[-1]


def _fits_the_screen(driver: WebDriver) -> None:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    inner = driver.execute_script("return window.innerWidth")
    assert width <= inner, (width, inner)


@pytest.mark.parametrize(("lang", "browser_lang"), [("en", "en-US"), ("ko", "ko-KR")])
def test_asking_streams_the_local_answer_with_citations_and_takes_a_thumbs_down(
    server, viewer, documents, lang, browser_lang
):
    title, _, question, passage_words, heading = DOCS[lang]
    driver = _browser(lang=browser_lang)
    try:
        _sign_in(driver, server.url, viewer)
        tab = driver.find_element(By.CSS_SELECTOR, '.tabs button[data-view="ask"]')
        assert tab.text == {"en": "Ask", "ko": "질문하기"}[lang]
        _tab(driver, "ask")
        turn = _ask(driver, question, 1)

        # The answer streamed in and is the local extract: the notice says why, in the
        # question's language.
        answer = turn.find_element(By.CSS_SELECTOR, ".answer").text
        assert answer.strip()
        notice = turn.find_element(By.CSS_SELECTOR, ".answer-notice")
        assert notice.is_displayed() and notice.text
        if lang == "ko":
            assert any("\uac00" <= ch <= "\ud7a3" for ch in notice.text), notice.text
        local = {"en": "extracted from the documents", "ko": "문서에서 발췌한 답변"}[lang]
        assert local in turn.find_element(By.CSS_SELECTOR, ".answer-meta").text

        # Citations: numbered, with title and heading path; one opens its passage.
        cites = turn.find_elements(By.CSS_SELECTOR, "button.cite")
        assert cites and cites[0].text.startswith("[1]")
        cite = next(c for c in cites if title in c.text)
        assert heading in cite.text
        cite.click()
        panel = driver.find_element(By.ID, "passage")
        WebDriverWait(driver, 5).until(lambda d: panel.is_displayed())
        assert driver.find_element(By.ID, "passage-title").text == title
        assert heading in driver.find_element(By.ID, "passage-meta").text
        assert passage_words in driver.find_element(By.ID, "passage-text").text

        # 👎 with a comment and the document that should have answered.
        turn.find_element(By.CSS_SELECTOR, 'button.thumb[data-rating="down"]').click()
        form = turn.find_element(By.CSS_SELECTOR, ".rate-form")
        WebDriverWait(driver, 10).until(lambda d: form.is_displayed())
        WebDriverWait(driver, 10).until(
            lambda d: form.find_elements(By.CSS_SELECTOR, f'option[value="{documents[lang]}"]')
        )
        comment = {"en": "The nurse step came second", "ko": "간호사 호출 단계가 빠졌어요"}[lang]
        form.find_element(By.CSS_SELECTOR, "textarea").send_keys(comment)
        form.find_element(By.CSS_SELECTOR, f'option[value="{documents[lang]}"]').click()
        form.find_element(By.CSS_SELECTOR, ".rate-send").click()
        status = turn.find_element(By.CSS_SELECTOR, ".rate-status")
        saved = {"en": "feedback is saved", "ko": "의견을 저장했습니다"}[lang]
        WebDriverWait(driver, 10).until(lambda d: not form.is_displayed(), message=status.text)
        assert saved in status.text
        _shot(driver, f"console-ask-{lang}.png")

        # The API has the rating on that answer.
        auth = _login(server.url, viewer)
        conversations = httpx.get(
            server.url + "/api/v1/rag/conversations", headers=auth, timeout=10
        ).json()
        conversation_id = conversations[0]["id"]
        assert conversations[0]["title"] == question
        r = httpx.get(
            f"{server.url}/api/v1/rag/conversations/{conversation_id}",
            headers=auth,
            timeout=10,
        )
        feedback = r.json()["turns"][-1]["feedback"]
        assert feedback["rating"] == "down" and feedback["comment"] == comment
        assert feedback["doc_id"] == documents[lang]

        # A follow-up continues the conversation.
        _ask(driver, {"en": "And who goes to the room?", "ko": "응답이 없으면요?"}[lang], 2)
        r = httpx.get(
            f"{server.url}/api/v1/rag/conversations/{conversation_id}",
            headers=auth,
            timeout=10,
        )
        assert len(r.json()["turns"]) == 2

        # A new conversation empties the thread; the history reopens the old one, 👎 kept.
        driver.find_element(By.ID, "ask-new").click()
        assert not driver.find_elements(By.CSS_SELECTOR, ".turn")

        # The history list re-renders when the new conversation starts: find, check and click
        # in one step, and look again if the button was replaced meanwhile.
        def reopen(d: WebDriver) -> bool:
            item = d.find_element(By.CSS_SELECTOR, f'#history button[data-id="{conversation_id}"]')
            if not (item.is_displayed() and item.is_enabled() and question in item.text):
                return False
            item.click()
            return True

        WebDriverWait(
            driver, 10, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
        ).until(reopen)
        WebDriverWait(driver, 10).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn")) == 2
        )
        first = driver.find_elements(By.CSS_SELECTOR, ".turn")[0]
        down = first.find_element(By.CSS_SELECTOR, 'button.thumb[data-rating="down"]')
        assert down.get_attribute("aria-pressed") == "true"
        # A past answer's citation still opens its document at the cited heading.
        next(
            c for c in first.find_elements(By.CSS_SELECTOR, "button.cite") if title in c.text
        ).click()
        WebDriverWait(driver, 10).until(
            ec.text_to_be_present_in_element((By.ID, "passage-text"), passage_words)
        )
    finally:
        driver.quit()


def test_admin_uploads_files_sees_the_import_finish_and_deletes_a_document(server, admin, tmp_path):
    stamp = uuid.uuid4().hex[:6]
    md = tmp_path / f"night-shift-{stamp}.md"
    md.write_text("# Night shift\n\n## Rounds\n\nCheck every room at 02:00 and 04:00.\n")
    txt = tmp_path / f"visitors-{stamp}.txt"
    txt.write_text("Visitors sign in at the front desk and leave by 20:00.\n")
    broken = tmp_path / f"scan-{stamp}.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")
    # The formats Korean teams keep (tests/data/docs/make_files.py made them).
    kept = []
    for name in ("parking.hwp", "outage.hwpx", "fall.docx", "fire.pdf"):
        copy = tmp_path / f"{Path(name).stem}-{stamp}{Path(name).suffix}"
        copy.write_bytes((Path(__file__).parent / "data" / "docs" / name).read_bytes())
        kept.append(copy)
    driver = _browser()
    try:
        _sign_in(driver, server.url, admin)
        _tab(driver, "documents")
        assert driver.find_element(By.ID, "upload-card").is_displayed()
        driver.find_element(By.ID, "upload-files").send_keys(
            "\n".join(str(p) for p in (md, txt, broken, *kept))
        )
        driver.find_element(By.ID, "upload-submit").click()
        WebDriverWait(driver, ANSWER_WAIT).until(
            lambda d: (
                d.find_element(By.ID, "job").get_attribute("data-state") in ("succeeded", "failed")
            )
        )
        assert driver.find_element(By.ID, "job").get_attribute("data-state") == "succeeded"
        assert driver.find_element(By.ID, "job-progress").get_attribute("value") == "1"
        summary = driver.find_element(By.CSS_SELECTOR, "#job-result .job-summary").text
        assert "6 documents" in summary and "7 files" in summary, summary
        assert broken.name in driver.find_element(By.ID, "job-result").text  # skipped, with why
        for stem in (md.stem, txt.stem, *(p.stem for p in kept)):
            WebDriverWait(driver, 10).until(
                ec.text_to_be_present_in_element((By.ID, "documents"), stem)
            )
        _shot(driver, "console-documents-en.png")

        row = driver.find_element(By.XPATH, f'//strong[text()="{txt.stem}"]/ancestor::tr')
        row.find_element(By.CSS_SELECTOR, "button.doc-delete").click()
        WebDriverWait(driver, 5).until(ec.alert_is_present())
        alert = driver.switch_to.alert
        assert txt.stem in alert.text
        alert.accept()
        WebDriverWait(driver, 10).until(
            lambda d: txt.stem not in d.find_element(By.ID, "documents").text
        )
        assert md.stem in driver.find_element(By.ID, "documents").text
        # The uploaded HWP answers a Korean question, cited with its heading path.
        r = httpx.post(
            server.url + "/api/v1/rag/ask",
            json={"question": "둘째 차량의 월 요금은?"},
            headers=_login(server.url, admin),
            timeout=60,
        )
        first = r.json()["sources"][0]
        assert first["title"] == kept[0].stem and "등록 차량 요금" in first["section"], first
    finally:
        driver.quit()


def test_non_admin_in_korean_on_a_phone_sees_documents_without_upload_or_delete(
    server, viewer, documents
):
    driver = _browser(lang="ko-KR", width=390, height=844, phone=True)
    try:
        _sign_in(driver, server.url, viewer)
        _tab(driver, "documents")
        WebDriverWait(driver, 10).until(
            ec.text_to_be_present_in_element((By.ID, "documents"), DOCS["ko"][0])
        )
        assert not driver.find_element(By.ID, "upload-card").is_displayed()
        assert not driver.find_elements(By.CSS_SELECTOR, "button.doc-delete")
        assert "관리자만" in driver.find_element(By.ID, "documents").text
        tab = driver.find_element(By.CSS_SELECTOR, '.tabs button[data-view="documents"]')
        assert tab.text == "문서"
        _fits_the_screen(driver)
        _shot(driver, "console-documents-ko.png")

        _tab(driver, "ask")
        _ask(driver, DOCS["ko"][2], 1)
        driver.find_element(By.CSS_SELECTOR, ".turn button.cite").click()
        WebDriverWait(driver, 5).until(lambda d: d.find_element(By.ID, "passage").is_displayed())
        _fits_the_screen(driver)
        _shot(driver, "console-ask-phone-ko.png")

        # An error answer reads as a sentence in the page's language: a follow-up in a
        # conversation that does not exist (404), after which the next question starts anew.
        driver.execute_script("state.conversation = arguments[0];", str(uuid.uuid4()))
        driver.find_element(By.ID, "question").send_keys("응답이 없으면요?")
        driver.find_element(By.ID, "ask-submit").click()
        failed = WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".turn[data-state=error]")
        )[0]
        message = failed.find_element(By.CSS_SELECTOR, "[role=alert]").text
        assert "답변을 받지 못했습니다" in message and "대화가 없습니다" in message, message
        driver.find_element(By.ID, "question").send_keys(DOCS["ko"][2])
        driver.find_element(By.ID, "ask-submit").click()
        WebDriverWait(driver, ANSWER_WAIT).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn[data-state=done]")) == 2
        )
    finally:
        driver.quit()
