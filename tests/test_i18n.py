"""Error details in Korean or English by Accept-Language (DEFAULT_LANGUAGE otherwise); codes
stay the same in every language (issue 13 item 1)."""

from __future__ import annotations

import ast
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from app.core.errors import install_error_handlers
from app.core.i18n import CATALOGUE, Language, localize, localize_validation, negotiate
from tests.conftest import clear_of_minute_edge

KO = {"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"}
HANGUL = re.compile("[\uac00-\ud7a3]")
SERVICE_TOKEN = "i18n-service-token-0123456789abcdef0123456789"
PROD = {"environment": "production", "security": {"access_token": SERVICE_TOKEN}}


def korean(text: str) -> bool:
    return bool(HANGUL.search(text))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Language.EN),
        ("ko", Language.KO),
        ("ko-KR,ko;q=0.9,en-US;q=0.8", Language.KO),
        ("en-US,en;q=0.9,ko;q=0.8", Language.EN),
        ("fr-FR, ko;q=0.5", Language.KO),
        ("en;q=0.1, ko;q=0.2", Language.KO),
        ("ko;q=0", Language.EN),
        ("de", Language.EN),
    ],
)
def test_accept_language_negotiation(header, expected):
    assert negotiate(header, Language.EN) is expected


def test_every_catalogue_entry_has_korean_with_the_same_parameters():
    for entry in CATALOGUE:
        assert korean(entry.ko), entry.code
        assert entry.ko.count("{") == entry.en.count("{"), entry.en


async def test_gate_401_messages_are_korean_on_request_and_english_unchanged(make_app):
    async with make_app(**PROD) as (_, client):
        cases = [
            ({}, "Authorization header required"),
            ({"Authorization": "Basic abc"}, "Invalid authorization header format"),
            ({"Authorization": "Bearer nope"}, "Invalid access token"),
        ]
        for headers, english in cases:
            r = await client.get("/api/v1/users/me", headers=headers)
            assert r.status_code == 401 and r.json()["detail"] == english
            assert r.headers["content-language"] == "en"
            r = await client.get("/api/v1/users/me", headers={**headers, **KO})
            assert r.status_code == 401 and r.json()["code"] == "unauthorized"
            assert korean(r.json()["detail"]), r.text
            assert r.headers["content-language"] == "ko"


async def test_413_is_korean_on_request(make_app):
    async with make_app(security={"max_body_bytes": 2048}) as (_, client):
        r = await client.post(
            "/api/v1/auth/register",
            content=b'{"email": "' + b"a" * 5000 + b'"}',
            headers={"Content-Type": "application/json", **KO},
        )
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        assert korean(r.json()["detail"]) and "2048" in r.json()["detail"]


async def test_429_is_korean_on_request(make_app):
    async with make_app(rate_limit={"enabled": True, "auth": "1/minute"}) as (_, client):
        await clear_of_minute_edge()
        body = {"email": "a@b.co", "password": "x"}
        await client.post("/api/v1/auth/login", json=body, headers=KO)
        r = await client.post("/api/v1/auth/login", json=body, headers=KO)
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert korean(r.json()["detail"]) and r.headers["retry-after"] in r.json()["detail"]
        # The group and the limit in Korean too, not "auth … (1 per 1 minute)".
        assert "로그인 요청 한도(1분에 1회)" in r.json()["detail"], r.json()["detail"]


async def test_422_validation_in_korean_names_field_problem_and_what_is_right(client):
    r = await client.post(
        "/api/v1/events",
        json={"source_id": "", "event_type": "JUMP", "timestamp": "2026-11-25T10:00:00"},
        headers=KO,
    )
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    body = r.json()
    assert korean(body["detail"])
    by_field = {e["field"]: e for e in body["errors"]}
    assert set(by_field) >= {"source_id", "event_type", "timestamp"}
    assert "1자 이상" in by_field["source_id"]["msg"]
    assert "START" in by_field["event_type"]["msg"]  # the allowed values
    assert "시간대" in by_field["timestamp"]["msg"]
    assert all(korean(e["msg"]) for e in body["errors"])
    # Same request in English: same codes and fields, English words.
    r = await client.post(
        "/api/v1/events",
        json={"source_id": "", "event_type": "JUMP", "timestamp": "2026-11-25T10:00:00"},
    )
    assert [e["type"] for e in r.json()["errors"]] == [e["type"] for e in body["errors"]]
    assert not korean(r.json()["detail"])


async def test_app_errors_404_and_custom_validation_are_korean(client):
    r = await client.get(f"/api/v1/knowledge/docs/{uuid.uuid4()}", headers=KO)
    assert r.status_code == 404 and r.json()["code"] == "document_not_found"
    assert korean(r.json()["detail"])
    r = await client.post(
        "/api/v1/events",
        json={"source_id": "c", "event_type": "END", "timestamp": "0001-01-01T00:00:00+14:00"},
        headers=KO,
    )
    assert r.status_code == 422 and "9999-12-30" in r.json()["detail"]
    assert korean(r.json()["errors"][0]["msg"])
    r = await client.post("/event/payload", json={"event_type": "END", "ts": 1e20}, headers=KO)
    assert r.status_code == 422 and korean(r.json()["detail"])
    r = await client.get("/nowhere", headers=KO)
    assert r.status_code == 404 and korean(r.json()["detail"])


async def test_default_language_setting_applies_without_a_header(make_app):
    async with make_app(default_language="ko") as (_, client):
        r = await client.get(f"/api/v1/knowledge/docs/{uuid.uuid4()}")
        assert r.status_code == 404 and korean(r.json()["detail"])
        r = await client.get(
            f"/api/v1/knowledge/docs/{uuid.uuid4()}", headers={"Accept-Language": "en"}
        )
        assert r.json()["detail"].startswith("No knowledge document")


async def test_503_and_500_are_korean_on_request():
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/db")
    async def db() -> None:
        raise sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/db", headers=KO)
        assert r.status_code == 503 and r.json()["code"] == "database_unavailable"
        assert korean(r.json()["detail"])
        r = await client.get("/boom", headers=KO)
        assert r.status_code == 500 and korean(r.json()["detail"])


def test_unknown_messages_keep_the_english_specifics_after_a_korean_sentence():
    text = localize("not_found", "No widget 7", Language.KO)
    assert korean(text) and "No widget 7" in text


# --- every message a request can get, in Korean ---------------------------------------------

APP = Path(__file__).resolve().parents[1] / "app"
ERROR_BASES = {"AppError", "NotFound", "Conflict", "Unauthorized", "Forbidden"}
ERROR_BASES |= {"ValidationFailed", "RateLimited", "Unavailable"}
# Request-body validators raise ValueError; elsewhere ValueError is for the CLI and start-up.
VALIDATOR_MODULES = ("schemas/", "services/alert_routing.py")
WRAPPED = "must not be blank"  # stands in for a message another message wraps


def _error_codes(trees: dict[Path, ast.Module]) -> dict[str, str]:
    """Each AppError subclass's default `code`, from the class bodies."""
    parents: dict[str, str] = {}
    codes: dict[str, str] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            if node.name != "AppError" and not set(bases) & (ERROR_BASES | set(parents)):
                continue
            parents[node.name] = bases[0] if bases else ""
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.AnnAssign | ast.Assign)
                    and isinstance(stmt.value, ast.Constant)
                    and "code" in ast.unparse(stmt).split("=")[0]
                ):
                    codes[node.name] = stmt.value.value
    for name in parents:
        cls = name
        while cls not in codes and cls in parents:
            cls = parents[cls]
        codes[name] = codes.get(cls, "internal_error")
    return codes


def _sample(node: ast.expr, constants: dict[str, str]) -> str | None:
    """The English a raise site writes, with each `{…}` replaced by a stand-in value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for i, value in enumerate(node.values):
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                inner = ast.unparse(value)
                parts.append(WRAPPED if "message" in inner or "msg" in inner else f"x{i}")
        return "".join(parts)
    return None


def raise_sites() -> list[tuple[str, str, str]]:
    """(where, code, English sample) for every error message app/ code raises to a caller."""
    trees = {p: ast.parse(p.read_text()) for p in sorted(APP.rglob("*.py"))}
    codes = _error_codes(trees)
    constants = {
        target.id: stmt.value.value
        for tree in trees.values()
        for stmt in tree.body
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
        for target in stmt.targets
        if isinstance(target, ast.Name) and isinstance(stmt.value.value, str)
    }
    sites = []
    for path, tree in trees.items():
        rel = path.relative_to(APP).as_posix()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in codes:
                code_kw = next((k.value for k in node.keywords if k.arg == "code"), None)
                code = code_kw.value if isinstance(code_kw, ast.Constant) else codes[name]
            elif name == "ValueError" and rel.startswith(VALIDATOR_MODULES):
                code = "value_error"
            else:
                continue
            english = _sample(node.args[0], constants)
            if english is not None:
                sites.append((f"app/{rel}:{node.lineno}", code, english))
    return sites


def test_every_raised_message_has_a_korean_catalogue_entry():
    sites = raise_sites()
    assert len(sites) > 80  # the walk found the raise sites
    untranslated = []
    for where, code, english in sites:
        if code == "value_error":
            ko = localize_validation(code, english, None, Language.KO)
        else:
            ko = localize(code, english, Language.KO)
        if not korean(ko) or english in ko:
            untranslated.append(f"{where} [{code}] {english!r} -> {ko!r}")
    assert not untranslated, "\n".join(untranslated)


def test_wrapped_and_role_messages_are_korean_throughout():
    text = localize(
        "forbidden",
        "This endpoint needs operator or above or the service token; your role is viewer",
        Language.KO,
        {"required": ["operator", "service"], "role": "viewer"},
    )
    assert (
        text
        == "이 엔드포인트에는 operator 이상 또는 서비스 토큰 권한이 필요합니다. 현재 역할은 viewer입니다"
    )
    text = localize(
        "validation_error",
        "sequence: sequence frame 3 has 5 features; the model expects 6 numbers per frame",
        Language.KO,
    )
    assert "sequence의 프레임 3에 특징이 5개" in text and "expects" not in text
    text = localize(
        "validation_error",
        "Invalid event payload: probs.fall: Input should be a valid number, "
        "unable to parse string as a number",
        Language.KO,
    )
    assert text == "이벤트 페이로드가 잘못되었습니다: probs.fall: 숫자여야 합니다"
    text = localize("validation_error", "sequence: must not be blank", Language.KO)
    assert text == "sequence 값 오류: 비어 있으면 안 됩니다. 내용을 쓰세요"
    # An empty parameter still matches its entry (single events have no `events[i].` prefix).
    text = localize(
        "validation_error",
        "metadata is 9000 bytes as JSON; at most 8192 are accepted (EVENT_METADATA_MAX_BYTES)",
        Language.KO,
    )
    assert text.startswith("metadata가 JSON으로 9000바이트")


async def test_jobs_silences_routes_and_google_errors_are_korean_over_http(client):
    until_past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    requests = [
        ("GET", f"/api/v1/jobs/{uuid.uuid4()}", None, 404, "job_not_found"),
        ("DELETE", f"/api/v1/silences/{uuid.uuid4()}", None, 404, "not_found"),
        ("GET", f"/api/v1/alerts/{uuid.uuid4()}", None, 404, "not_found"),
        ("POST", "/api/v1/silences", {"source_id": "cam-1", "until": until_past}, 422, None),
        ("POST", "/api/v1/auth/google", {"id_token": "x.y.z"}, 404, "google_not_configured"),
        ("PUT", "/api/v1/alerts/routes", {"routes": [{"channels": ["pigeon"]}]}, 422, None),
    ]
    for method, url, body, status, code in requests:
        r = await client.request(method, url, json=body, headers=KO)
        assert r.status_code == status, (url, r.text)
        if code:
            assert r.json()["code"] == code
        detail = r.json()["detail"]
        assert korean(detail) and not re.search(r"\b(the|is|must|with|no)\b", detail), (url, detail)


def _english_words(text: str) -> list[str]:
    """Latin words in a Korean message, beyond names a Korean reader keeps as written."""
    keep = {"JSON", "UUID", "ISO", "name", "example", "com", "START", "END", "PROBS", "HEARTBEAT"}
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in keep]


async def test_korean_validation_messages_carry_no_english_fragments(client):
    """Point 8 of the first-day walk: an enum's "or", an e-mail validator's English, a JSON
    offset shown as a field, and missing login fields said as "not a string"."""
    bad_type = {"source_id": "cam-1", "event_type": "NOPE", "timestamp": "2026-11-25T01:00:00Z"}
    r = await client.post("/api/v1/events", json=bad_type, headers=KO)
    msg = r.json()["errors"][0]["msg"]
    assert "'PROBS' 또는 'HEARTBEAT'" in msg and not _english_words(msg), msg

    r = await client.post(
        "/api/v1/auth/register",
        json={"email": "not-an-email", "password": "pw-12345678"},
        headers=KO,
    )
    msg = r.json()["errors"][0]["msg"]
    assert "이메일 주소" in msg and not _english_words(msg), msg

    r = await client.post(
        "/api/v1/events",
        content=b'{"source_id": "cam-1", "event_',
        headers={**KO, "Content-Type": "application/json"},
    )
    error = r.json()["errors"][0]
    assert r.status_code == 422 and error["field"] == "body", error
    assert "23번째 문자 근처" in error["msg"] and not _english_words(error["msg"]), error
    r = await client.post(
        "/api/v1/events",
        content=b'{"source_id": "cam-1", "event_',
        headers={"Content-Type": "application/json"},
    )
    assert "at character 23: Unterminated string" in r.json()["errors"][0]["msg"]

    for kwargs in ({"data": {}}, {"json": {}}):
        r = await client.post("/api/v1/auth/login", headers=KO, **kwargs)
        assert r.status_code == 422
        assert [e["type"] for e in r.json()["errors"]] == ["missing", "missing"], r.json()
        assert all("필수" in e["msg"] for e in r.json()["errors"])
