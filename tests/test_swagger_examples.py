"""Every Swagger example runs, twice (issue 26 point 2).

The README promises that "Try it out → Execute" works for every operation as shipped. This
test builds each request the way Swagger UI does from the document alone, executes it twice
against a fresh app in development mode and expects 2xx both times. After every operation no
source may be watched for going offline and no alert may exist, even once the offline window
has passed (a newcomer clicking through Swagger must not page anyone a minute later).

How a request is built (Swagger UI 5, OpenAPI 3.1):
- body: the first media type's `example`, else the first of its `examples`, else a sample of
  the schema (`sample` below: `examples[0]`, `example`, `default`, `const`, the first `enum`,
  the first `anyOf`/`oneOf`, else by type and format); a schema Swagger would fill with a
  random string (a `pattern`) or the clock (a date) fails: it needs an example;
- query and path parameters: the parameter's `example`/`examples`, else the schema's
  `example` or `default`; a query parameter with none is not sent (the field stays empty);
- a path id no document can know is the one an earlier example created (`IDS`), as a user
  copies it from the answer; only alerts and incidents, which no example may create, have
  none (`NOT_CREATABLE`), so there the right answer is 404.

The few operations that cannot answer 2xx twice are named below, each with its reason:
`EXCLUDED` (Swagger cannot exercise them: a stream, an upload, a secret from elsewhere),
`CONFLICT_ON_SECOND_RUN` and `FRESH_SERVER_REFUSES` (the exact error a fresh server gives).
The browser tests at the end check what Swagger UI really shows for the login form, a path
parameter and the clock-dependent silence example.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.security import Role
from app.models.base import Base, utcnow
from tests.conftest import register_and_login, wait_for_job
from tests.live_server import LiveServer

Op = tuple[str, str]

# Operations Swagger cannot exercise by nature, each with the reason (kept small on purpose).
EXCLUDED: dict[Op, str] = {
    ("get", "/api/v1/events/stream"): "an endless Server-Sent Events stream that answers only "
    "when a new event arrives (tests/test_event_stream.py covers it)",
    ("post", "/api/v1/auth/google"): "needs an ID token from Google's sign-in (and is off "
    "unless GOOGLE_CLIENT_ID is set)",
    ("post", "/api/v1/auth/password-reset/confirm"): "needs the one-time token from the reset "
    "e-mail",
    ("post", "/api/v1/users/me/password"): "needs the caller's current password, which the "
    "first run changes",
    ("post", "/api/v1/knowledge/import"): "a file upload: the user picks the files",
    ("post", "/api/v1/admin/jobs/train"): "a file upload: the user picks the .npz data set",
}
# Created once by design: an agent's name is its identity (two credentials of one name would
# be ambiguous in logs and alerts), so the second run answers 409.
CONFLICT_ON_SECOND_RUN: dict[Op, str] = {
    ("post", "/api/v1/admin/agents"): "an agent name is unique",
}
# Examples that need what a fresh server lacks by design: the answer must be this error (the
# code names what is missing), never a 2xx that fails later and pages someone.
FRESH_SERVER_REFUSES: dict[Op, tuple[int, str, str]] = {
    ("post", "/api/v1/debug/kakao/send-test"): (
        503,
        "kakao_not_configured",
        "a fresh server has no Kakao token; the answer names KAKAO_ACCESS_TOKEN",
    ),
    ("post", "/api/v1/models/train"): (
        409,
        "not_enough_feedback",
        "retraining needs 8 labelled episodes with frames; a fresh server has none, and a "
        "job that fails for want of them would page (job_failed)",
    ),
}
# Path ids of resources no example may create (an alert, and an incident made of alerts).
NOT_CREATABLE = {"alert_id", "incident_id"}
# Run after everything else: ends every token of the caller (the test signs in again).
LAST: set[Op] = {("post", "/api/v1/auth/logout-all")}
# What each DELETE removes is made by this example; it runs again before the DELETE's second
# run, as a user deletes twice only what they created twice.
CREATED_BY: dict[str, Op] = {
    "/api/v1/admin/invites/{invite_id}": ("post", "/api/v1/admin/invites"),
    "/api/v1/silences/{silence_id}": ("post", "/api/v1/silences"),
    "/api/v1/knowledge/docs/{doc_id}": ("post", "/api/v1/knowledge/docs"),
    "/api/v1/admin/agents/{agent_id}": ("post", "/api/v1/admin/agents"),
    "/api/v1/admin/sources/{source_id}": ("put", "/api/v1/admin/sources/{source_id}"),
}


class Ids:
    """Ids earlier examples created, by path parameter name (the newest one is used)."""

    def __init__(self) -> None:
        self.pool: dict[str, list[str]] = {}

    def add(self, name: str, value: Any) -> None:
        if value is not None:
            self.pool.setdefault(name, []).append(str(value))

    def newest(self, name: str) -> str | None:
        found = self.pool.get(name)
        return found[-1] if found else None


# What a creating example's answer gives later operations (what a user copies from it).
IDS: dict[Op, Callable[[Any, Ids], object]] = {
    ("post", "/api/v1/events/batch"): lambda b, ids: [
        ids.add("episode_id", r["episode_id"]) for r in b["results"]
    ],
    # The account the register example made (the test's own admin is not a viewer).
    ("get", "/api/v1/admin/users"): lambda b, ids: [
        ids.add("user_id", u["id"]) for u in b if u["role"] == Role.VIEWER
    ],
    ("post", "/api/v1/admin/invites"): lambda b, ids: ids.add("invite_id", b["id"]),
    ("post", "/api/v1/silences"): lambda b, ids: ids.add("silence_id", b["id"]),
    ("post", "/api/v1/knowledge/docs"): lambda b, ids: ids.add("doc_id", b["id"]),
    ("post", "/api/v1/knowledge/reindex"): lambda b, ids: ids.add("job_id", b["id"]),
    ("post", "/api/v1/rag/ask"): lambda b, ids: (
        ids.add("conversation_id", b["conversation_id"]),
        ids.add("turn_id", b["turn_id"]),
    ),
    ("post", "/api/v1/admin/agents"): lambda b, ids: ids.add("agent_id", b["id"]),
    ("get", "/api/v1/models"): lambda b, ids: ids.add("model_version", b["active"]),
}


class NoSample(Exception):
    """The document alone cannot fill this request: Swagger UI would make up a value (a
    `pattern`, the clock) or the user could not know an id."""


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**doc["components"]["schemas"][name], **rest}
    return schema


def sample(schema: dict[str, Any], doc: dict[str, Any], where: str = "body") -> Any:
    """What Swagger UI's sample generator pre-fills for `schema` (the parts Sentinel uses)."""
    schema = _resolve(schema, doc)
    if schema.get("examples"):
        return schema["examples"][0]
    for key in ("example", "default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return sample(schema[key][0], doc, where)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {
            name: sample(sub, doc, f"{where}.{name}")
            for name, sub in props.items()
            if not _resolve(sub, doc).get("readOnly")
        }
    if kind == "array":
        return [sample(schema.get("items", {}), doc, f"{where}[]")]
    if kind == "string":
        return _string_sample(schema, where)
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    return None


def _string_sample(schema: dict[str, Any], where: str) -> str:
    fmt = schema.get("format")
    if fmt == "email":
        return "user@example.com"
    if fmt == "uuid":
        return "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    if schema.get("pattern") or fmt in ("date-time", "date"):
        raise NoSample(f"{where}: Swagger would make up a value (pattern or clock)")
    return "string"


def request_body(op: dict[str, Any], doc: dict[str, Any]) -> tuple[str, Any] | None:
    """The body Swagger UI pre-fills: (media type, value), or None for no body."""
    content = op.get("requestBody", {}).get("content")
    if not content:
        return None
    media_type, media = next(iter(content.items()))  # Swagger shows the first media type
    if "example" in media:
        return media_type, media["example"]
    if media.get("examples"):
        return media_type, next(iter(media["examples"].values()))["value"]
    return media_type, sample(media["schema"], doc)


def _param_example(param: dict[str, Any], doc: dict[str, Any]) -> Any:
    schema = _resolve(param.get("schema", {}), doc)
    if "example" in param:
        return param["example"]
    if param.get("examples"):
        return next(iter(param["examples"].values()))["value"]
    return schema.get("example", schema.get("default"))


def query_params(op: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """Query parameters Swagger UI pre-fills (the others stay empty and are not sent)."""
    params = {}
    for param in op.get("parameters", []):
        value = _param_example(param, doc) if param["in"] == "query" else None
        if value is not None:
            params[param["name"]] = value
    return params


def fill_path(path: str, op: dict[str, Any], doc: dict[str, Any], ids: Ids) -> str:
    """The path with each parameter filled: its example, else the id an earlier example made."""
    examples = {p["name"]: _param_example(p, doc) for p in op.get("parameters", [])}

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = examples.get(name) or ids.newest(name)
        if value is None and name not in NOT_CREATABLE:
            raise NoSample(f"no example creates the {name} this path needs, and it has none")
        return str(value or uuid.uuid4())

    return re.sub(r"\{([^}]+)\}", one, path)


def _ordered(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Document order, except: operations on an id after those that create it, DELETEs
    after the rest, `LAST` last."""
    ops = [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items()]

    def phase(entry: tuple[str, str, dict[str, Any]]) -> int:
        method, path, _ = entry
        if (method, path) in LAST:
            return 3
        if method == "delete":
            return 2
        return 1 if "{" in path else 0

    return sorted(ops, key=phase)


async def _empty_tables(database_url: str) -> None:
    """A fresh server starts from empty tables (whatever tests before this one left)."""
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
    await engine.dispose()


@pytest.fixture
async def fresh(
    make_app, database_url, clean_state
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """A new app in development mode on empty tables (cleaned again afterwards)."""
    await _empty_tables(database_url)
    async with make_app() as pair:
        yield pair


class Walk:
    """Executes examples as Swagger UI would, as one admin, and records what failed."""

    def __init__(self, app: Any, client: httpx.AsyncClient, doc: dict[str, Any]) -> None:
        self.app, self.client, self.doc = app, client, doc
        self.ids = Ids()
        self.headers: dict[str, str] = {}
        self.failures: list[str] = []
        self.executed = 0
        self.seen: set[str] = set()
        self.admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        self.password = "s3cret-pass"

    async def sign_in(self) -> None:
        """Log in as the admin and put its token into Authorize."""
        r = await self.client.post(
            "/api/v1/auth/login", data={"username": self.admin_email, "password": self.password}
        )
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def make_admin(self) -> None:
        """An admin, as `sentinel create-admin` makes one, signed in."""
        await register_and_login(self.client, self.admin_email, self.password)
        await self.app.state.container.user_service().set_role(self.admin_email, Role.ADMIN)
        await self.sign_in()

    def body_of(self, method: str, path: str, op: dict[str, Any]) -> tuple[str, Any] | None:
        body = request_body(op, self.doc)
        if path == "/api/v1/auth/login":
            # The form shows placeholders only: the user types the account they registered.
            assert body is not None and set(body[1].values()) == {""}, body
            register = self.doc["paths"]["/api/v1/auth/register"]["post"]
            account = request_body(register, self.doc)
            assert account is not None
            body = (body[0], {"username": account[1]["email"], "password": account[1]["password"]})
        return body

    async def execute(self, method: str, path: str, run: int) -> httpx.Response | None:
        """One click on Execute; None when Swagger could not even build the request."""
        op = self.doc["paths"][path][method]
        try:
            body = self.body_of(method, path, op)
            url = fill_path(path, op, self.doc, self.ids)
        except NoSample as exc:
            self.failures.append(f"{method.upper()} {path}: {exc}")
            return None
        params = query_params(op, self.doc)
        kwargs: dict[str, Any] = {"params": params, "headers": self.headers}
        if body is not None:
            media_type, value = body
            kwargs["data" if media_type.endswith("x-www-form-urlencoded") else "json"] = value
        r = await self.client.request(method, url, **kwargs)
        self.executed += 1
        await self.learn(method, path, run, r)
        return r

    async def learn(self, method: str, path: str, run: int, r: httpx.Response) -> None:
        """Take the ids a user would copy from the answer; let a started job finish first."""
        if not r.is_success or not r.headers.get("content-type", "").startswith("application/"):
            return
        answer = r.json()
        if (method, path) in IDS and (run == 1 or method != "get"):
            IDS[(method, path)](answer, self.ids)
        if r.status_code == 202 and isinstance(answer, dict):
            # A started job: `job_id`, or the job itself (`id` with a `state`).
            job = answer.get("job_id") or (answer.get("id") if "state" in answer else None)
            if job is not None:
                await wait_for_job(self.client, str(job))

    def judge(self, method: str, path: str, run: int, r: httpx.Response) -> None:
        if (method, path) in FRESH_SERVER_REFUSES:
            status, code, why = FRESH_SERVER_REFUSES[(method, path)]
            if (r.status_code, r.json().get("code")) != (status, code):
                self.failures.append(
                    f"{method.upper()} {path} run {run}: {r.status_code} "
                    f"{r.text[:300]} (expected {status} {code}: {why})"
                )
            return
        ok = r.is_success
        ok |= r.status_code == 404 and any(f"{{{n}}}" in path for n in NOT_CREATABLE)
        ok |= r.status_code == 409 and run == 2 and (method, path) in CONFLICT_ON_SECOND_RUN
        if not ok:
            self.failures.append(
                f"{method.upper()} {path} run {run}: {r.status_code} {r.text[:300]}"
            )

    async def twice(self, method: str, path: str) -> None:
        for run in (1, 2):
            if run == 2 and method == "delete":
                await self.execute(*CREATED_BY[path], run=2)
            r = await self.execute(method, path, run)
            if r is None:
                return
            self.judge(method, path, run, r)
            if (method, path) in LAST:
                await self.sign_in()

    async def nobody_paged(self, after: str) -> None:
        """No watched source and no alert, also once the offline window has passed."""
        container = self.app.state.container
        window = container.settings().events.source_offline_after_secs
        await container.source_monitor().check(utcnow() + timedelta(seconds=window + 60))
        r = await self.client.get("/api/v1/sources", headers=self.headers)
        watched = {s["source_id"] for s in r.json()["items"] if s["watched"]} - self.seen
        alerts = (await self.client.get("/api/v1/alerts", headers=self.headers)).json()["items"]
        new = {f"{a['kind']} for {a['source_id']}" for a in alerts} - self.seen
        if watched or new:
            self.failures.append(f"{after} made watched: {watched or '-'}; alerted: {new or '-'}")
        self.seen |= watched | new  # each is reported once, after the operation that caused it


async def test_every_swagger_example_succeeds_twice_and_pages_nobody(fresh):
    app, client = fresh
    doc = (await client.get("/openapi.json")).json()
    assert len(EXCLUDED) <= 6, "exclusions are for what Swagger cannot exercise by nature"
    deletes = {p for p, item in doc["paths"].items() if "delete" in item}
    assert deletes == set(CREATED_BY), "name the example that creates what each DELETE removes"
    operations = {(m, p) for p, item in doc["paths"].items() for m in item}
    named = set(EXCLUDED) | set(CONFLICT_ON_SECOND_RUN) | set(FRESH_SERVER_REFUSES) | LAST
    assert named <= operations, named - operations  # no stale entry hides a new operation
    walk = Walk(app, client, doc)
    await walk.make_admin()
    # The monitor gives sources one window after its first look: look now, judge later.
    await app.state.container.source_monitor().check(utcnow())
    for method, path, _ in _ordered(doc):
        if (method, path) not in EXCLUDED:
            await walk.twice(method, path)
            await walk.nobody_paged(f"{method.upper()} {path}")
    assert not walk.failures, "\n".join(walk.failures)
    assert walk.executed >= 2 * (len(operations) - len(EXCLUDED))


async def test_login_form_shows_placeholders_not_values(client):
    """Swagger UI pre-fills a form field with its schema sample ("string" for a plain string):
    the login form must carry nothing a user would send as-is, and say what goes where."""
    doc = (await client.get("/openapi.json")).json()
    login = doc["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"]
    form = login["application/x-www-form-urlencoded"]
    assert "example" not in form and "examples" not in form
    for name, field in form["schema"]["properties"].items():
        assert field.get("description"), name  # shown beside the field: what goes in it
        for key in ("example", "default", "const", "enum"):
            assert not field.get(key), (name, key, field[key])
        assert sample(field, doc) == "", (name, sample(field, doc))


async def test_trying_the_routing_example_leaves_routing_as_the_default(client, app):
    """`PUT /alerts/routes` replaces every rule: an example naming fewer kinds would silently
    stop routing the others (failed jobs, failed deliveries) after one click."""
    doc = (await client.get("/openapi.json")).json()
    put = doc["paths"]["/api/v1/alerts/routes"]["put"]
    example = request_body(put, doc)
    assert example is not None
    headers = {"Authorization": f"Bearer {await _admin_token(client, app)}"}
    default = (await client.get("/api/v1/alerts/routes", headers=headers)).json()
    assert default["origin"] == "default"
    r = await client.put("/api/v1/alerts/routes", json=example[1], headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["origin"] == "api" and r.json()["rules"] == default["rules"]


async def _admin_token(client: httpx.AsyncClient, app: Any) -> str:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await register_and_login(client, email)
    await app.state.container.user_service().set_role(email, Role.ADMIN)
    r = await client.post("/api/v1/auth/login", data={"username": email, "password": "s3cret-pass"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture(scope="module")
def docs_page() -> Iterator[webdriver.Chrome]:
    """Swagger UI of a real `sentinel serve`, in headless Chromium (missing browser: FAIL)."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("headless Chromium is required: run .ci/system-deps")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    server = LiveServer({}).start()
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(server.url + "/docs")
        WebDriverWait(driver, 60).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 10
        )
        yield driver
    finally:
        driver.quit()
        server.stop()


def _try_it_out(driver: webdriver.Chrome, operation_id: str) -> WebElement:
    """Open one operation and press "Try it out", as a user does before Execute."""
    op = driver.find_element(By.ID, f"operations-{operation_id}")
    driver.execute_script("arguments[0].scrollIntoView()", op)
    op.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    WebDriverWait(driver, 20).until(lambda _: op.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    op.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    return op


def _inputs(op: WebElement) -> dict[str, WebElement]:
    """The operation's input fields by their placeholder."""
    found = op.find_elements(By.CSS_SELECTOR, "input")
    return {field.get_attribute("placeholder") or "": field for field in found}


def test_swagger_ui_login_form_is_empty_with_placeholders(docs_page):
    """What the browser shows, not only what the document says: empty fields (a user types
    the account they registered), each with its placeholder; was `string`/`string`."""
    op = _try_it_out(docs_page, "auth-login_api_v1_auth_login_post")
    WebDriverWait(docs_page, 20).until(lambda _: {"username", "password"} <= set(_inputs(op)))
    fields = _inputs(op)
    for name in ("username", "password"):
        assert fields[name].get_attribute("value") == "", name
    assert fields["password"].get_attribute("type") == "password"


def test_swagger_ui_prefills_the_source_path_and_a_future_silence(docs_page):
    """A path a user cannot guess comes filled in; the silence ends in the future."""
    op = _try_it_out(docs_page, "admin-register_source_api_v1_admin_sources__source_id__put")
    WebDriverWait(docs_page, 20).until(lambda _: op.find_elements(By.CSS_SELECTOR, "input"))
    values = [i.get_attribute("value") for i in op.find_elements(By.CSS_SELECTOR, "input")]
    assert "cam-lobby-1" in values
    op = _try_it_out(docs_page, "alerts-create_silence_api_v1_silences_post")
    WebDriverWait(docs_page, 20).until(lambda _: op.find_elements(By.CSS_SELECTOR, "textarea"))
    body = json.loads(op.find_element(By.CSS_SELECTOR, "textarea").get_attribute("value") or "")
    until = datetime.fromisoformat(body["until"])
    assert utcnow() + timedelta(hours=7) < until < utcnow() + timedelta(hours=9), body
