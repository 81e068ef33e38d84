"""The OpenAPI document as a teaching page: tag descriptions, real summaries, request
examples that succeed when executed twice, error responses only where they can happen, the
one error schema everywhere, and one bearer scheme for user JWTs and the service token.

Applied once to the generated schema (`install_openapi`), so routers stay HTTP-only and a
summary or response a router declares itself always wins over the defaults here.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

from app.core.errors import ErrorResponse
from app.schemas.alert_routing import RouteKind

BEARER = "bearerAuth"

TAGS: list[dict[str, str]] = [
    {
        "name": "auth",
        "description": "Create an account and log in. The token from `/auth/login` goes into "
        "**Authorize** (paste it as the bearer value).",
    },
    {"name": "users", "description": "The logged-in user's own account."},
    {
        "name": "behavior",
        "description": "Score a feature sequence with the in-process LSTM (frames × features; "
        "see `/behavior/model` for the expected shape).",
    },
    {
        "name": "events",
        "description": "Events from video-analytics agents (START/PROBS/END/HEARTBEAT), the "
        "episodes they form, sources and a live stream. An `event_id` makes a post idempotent; "
        "leave it out and every post is a new event.",
    },
    {
        "name": "alerts",
        "description": "Alerts (abnormal episodes, offline sources, failed deliveries and jobs) "
        "with their per-channel deliveries; routing rules, schedules, silences and "
        "acknowledgement.",
    },
    {
        "name": "incidents",
        "description": "Alerts of one source and kind close together, told as one story: one "
        "first message, at most one update per interval, one resolve message. Acknowledging "
        "an incident acknowledges its alerts and stops its escalation chain.",
    },
    {
        "name": "knowledge",
        "description": "Documents the assistant answers from (mostly Korean). Creating or "
        "updating a document indexes it unless `refresh_vector` is false.",
    },
    {
        "name": "rag",
        "description": "Ask the knowledge assistant. Leave `conversation_id` out to start a "
        "conversation; send the returned id to continue it.",
    },
    {
        "name": "learning",
        "description": "Learning from operators: label what an episode really was, retrain on "
        "the labels (a job), compare the candidate with the active version and activate it; "
        "every process serves it within seconds. Activating an older version rolls back.",
    },
    {
        "name": "jobs",
        "description": "Background jobs (reindex, bulk import, training, summaries, retention): "
        "state, progress and result. Long work answers 202 with the job to poll.",
    },
    {
        "name": "admin",
        "description": "Administrators: users and roles, invites, agent credentials (one "
        "token per video agent, bound to its sources) and registered sources, LLM statistics, "
        "usage and cost, queues and admin-started jobs.",
    },
    {"name": "debug", "description": "Development helpers (not mounted in production)."},
    {"name": "health", "description": "Liveness, readiness and dependency status for probes."},
    {"name": "ops", "description": "Prometheus metrics."},
]

# Summaries for operations whose function name made a poor one ("Me", "Live").
SUMMARIES: dict[tuple[str, str], str] = {
    ("get", "/health"): "Overall health with each dependency's status",
    ("get", "/health/live"): "Liveness: the process answers",
    ("get", "/health/ready"): "Readiness: the database (and Redis when configured) answer",
    ("get", "/metrics"): "Prometheus metrics",
    ("post", "/api/v1/auth/register"): "Create an account",
    ("post", "/api/v1/auth/login"): "Log in and get a bearer token",
    ("get", "/api/v1/users/me"): "The logged-in user",
    ("post", "/api/v1/events"): "Post one event",
    ("post", "/api/v1/events/batch"): "Post a batch of buffered events",
    ("get", "/api/v1/events"): "List events (filters, cursor pagination)",
    ("get", "/api/v1/events/recent"): "The most recent events",
    ("get", "/api/v1/events/stream"): "Live event stream (Server-Sent Events)",
    ("get", "/api/v1/sources"): "Sources with last-seen time and online state",
    ("get", "/api/v1/episodes"): "List episodes (filters, cursor pagination)",
    ("get", "/api/v1/episodes/{episode_id}"): "One episode with its events",
    ("get", "/api/v1/alerts"): "List alerts (filters, cursor pagination)",
    ("get", "/api/v1/debug/kakao/token-check"): "Check the Kakao token",
    ("post", "/api/v1/debug/kakao/send-test"): "Send a Kakao test memo",
    ("post", "/api/v1/knowledge/docs"): "Add a document",
    ("get", "/api/v1/knowledge/docs"): "List documents (cursor pagination)",
    ("get", "/api/v1/knowledge/docs/{doc_id}"): "One document",
    ("patch", "/api/v1/knowledge/docs/{doc_id}"): "Change a document",
    ("delete", "/api/v1/knowledge/docs/{doc_id}"): "Delete a document",
    ("post", "/api/v1/knowledge/reindex"): "Rebuild the vector index from all documents",
    ("post", "/api/v1/rag/ask"): "Ask a question",
    ("post", "/api/v1/rag/ask/stream"): "Ask a question, answer streamed (Server-Sent Events)",
    ("get", "/api/v1/rag/conversations/{conversation_id}"): "One conversation with its turns",
    (
        "post",
        "/api/v1/rag/conversations/{conversation_id}/turns/{turn_id}/feedback",
    ): "Rate an answer 👍/👎 (with a comment and the right document)",
    ("get", "/api/v1/admin/llm/stats"): "LLM provider statistics",
    ("post", "/api/v1/auth/google"): "Sign in with a Google ID token",
    ("post", "/api/v1/admin/jobs/retention"): "Run retention as a job (dry run by default)",
    ("post", "/api/v1/knowledge/import"): "Import many documents (files or a zip) as a job",
    ("get", "/api/v1/jobs/{job_id}"): "One background job: state, progress, result",
    ("get", "/api/v1/jobs"): "List background jobs",
    ("get", "/api/v1/admin/queues"): "Job queue health: depth, workers, running, failed",
    ("get", "/api/v1/admin/stats"): "LLM usage, cost and cache hit rates per day",
    ("get", "/api/v1/alerts/routes"): "Alert routing rules",
    ("put", "/api/v1/alerts/routes"): "Replace the alert routing rules",
    ("get", "/api/v1/alerts/{alert_id}"): "One alert with its deliveries",
    ("post", "/api/v1/alerts/{alert_id}/ack"): "Acknowledge an alert",
    ("post", "/api/v1/silences"): "Silence alerts from matching sources",
    ("get", "/api/v1/silences"): "List silences",
    ("delete", "/api/v1/silences/{silence_id}"): "End a silence",
    ("post", "/echo"): "Echo a JSON body (development)",
}

# The shipped model's labels (badminton, running, standing, walking; the last two are normal):
# a walking-heavy episode closes `normal`, so trying the examples never raises an alert.
_PROBS = {"walking": 0.82, "standing": 0.12, "running": 0.04, "badminton": 0.02}
_EVENT = {
    "source_id": "cam-lobby-1",
    "event_type": "PROBS",
    "timestamp": "2026-11-25T01:02:03+09:00",
    "probs": _PROBS,
    "metadata": {"fps": 15},
}
# One whole normal episode (START, PROBS, END). No HEARTBEAT: a heartbeat makes a watched
# source eligible for `source_offline`, which would page someone a minute after a try.
_BATCH = {
    "events": [
        {**_EVENT, "event_type": "START", "probs": None},
        _EVENT,
        {**_EVENT, "event_type": "END", "timestamp": "2026-11-25T01:02:09+09:00"},
    ]
}
_ASK = {"question": "낙상 알림이 오면 무엇을 해야 하나요?", "top_k": 5}
# Path of the silence example, whose `until` is set when the document is served (see
# `_refresh_clock_examples`): a fixed date would fall out of the accepted year.
SILENCE = ("post", "/api/v1/silences")
# Request examples Swagger's "Try it out" pre-fills: each succeeds when executed twice, and
# none makes a source watched or records an alert (tests/test_swagger_examples.py runs them).
REQUEST_EXAMPLES: dict[tuple[str, str], Any] = {
    ("post", "/api/v1/events"): _EVENT,
    ("post", "/api/v1/events/batch"): _BATCH,
    ("post", "/api/v1/knowledge/docs"): {
        "title": "낙상 알림 대응 절차",
        "content": "낙상 알림이 오면 2분 안에 입주자에게 연락하고, 응답이 없으면 현장을 확인합니다.",
        "source": "ops-manual.pdf",
        "metadata": {"department": "ops"},
    },
    ("patch", "/api/v1/knowledge/docs/{doc_id}"): {"title": "낙상 알림 대응 절차 (개정)"},
    ("post", "/api/v1/rag/ask"): _ASK,
    ("post", "/api/v1/rag/ask/stream"): _ASK,
    (
        "post",
        "/api/v1/rag/conversations/{conversation_id}/turns/{turn_id}/feedback",
    ): {"rating": "down", "comment": "낙상 알림 절차 문서의 2분 규칙이 빠졌습니다"},
    # The default written out (every kind to every enabled channel): trying it teaches the
    # rule's shape and leaves routing as it was; naming fewer kinds would drop the others.
    ("put", "/api/v1/alerts/routes"): {
        "rules": [{"source": "*", "kinds": [kind.value for kind in RouteKind], "channels": ["*"]}]
    },
    ("put", "/api/v1/alerts/schedules"): {
        "schedules": [
            {
                "name": "night",
                "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                "times": [{"start": "22:00", "end": "06:00"}],
                "exceptions": [],
            }
        ]
    },
    SILENCE: {"source_id": "cam-lobby-*", "until": None, "reason": "로비 공사 중"},
    ("patch", "/api/v1/admin/users/{user_id}"): {"role": "operator"},
    # Registered for its name only: `watch_offline: true` would page when it goes quiet.
    ("put", "/api/v1/admin/sources/{source_id}"): {"watch_offline": False, "name": "로비 카메라"},
    ("post", "/echo"): {"hello": "world"},
}

ERROR_DESCRIPTIONS: dict[str, str] = {
    "400": "",  # never answered: a body that is not valid JSON is a 422 (json_invalid)
    "401": "Missing or invalid bearer token (routes with a lock; every route in production)",
    "403": "Authenticated, but this account may not do this",
    "404": "The id in the path (or body) does not exist",
    "409": "Conflicts with existing data",
    "413": "Request body over MAX_BODY_BYTES",
    "415": "The body is not JSON: send Content-Type: application/json",
    "422": "Invalid input: `errors` lists each field, the problem and what would be right",
    "429": "Rate limit exceeded; see Retry-After",
    "503": "A dependency (database, vector store) is unavailable; retry later",
}
# Error statuses a route declares itself (with its own body) that the rules above keep.
OWN_ERRORS: dict[tuple[str, str], set[str]] = {
    ("get", "/health"): {"503"},
    ("get", "/health/ready"): {"503"},
    ("get", "/metrics"): {"401"},
}
# Operations with a 409 of their own (the e-mail is taken; a reindex is already running; an
# agent name is taken; another request is changing the same document; too few labelled
# episodes to retrain).
CONFLICTS = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/google"),
    ("post", "/api/v1/knowledge/reindex"),
    ("post", "/api/v1/admin/agents"),
    ("patch", "/api/v1/knowledge/docs/{doc_id}"),
    ("delete", "/api/v1/knowledge/docs/{doc_id}"),
    ("put", "/api/v1/alerts/schedules"),
    ("post", "/api/v1/models/train"),
}
# Open operations (no token needed) that still answer 403: an unusable invite, an invalid or
# used password reset token.
OPEN_FORBIDDEN = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/google"),
    ("post", "/api/v1/auth/password-reset/confirm"),
}
# Operations that answer 404 when their feature is off on this server.
FEATURE_OFF = {("post", "/api/v1/auth/google")}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def _has_body(op: dict[str, Any]) -> bool:
    return "requestBody" in op


def _refers_to_existing(op: dict[str, Any], path: str, schemas: dict[str, Any]) -> bool:
    if "{" in path:
        return True
    for media in op.get("requestBody", {}).get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        props = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        if any(name.endswith("_id") and name not in {"event_id", "source_id"} for name in props):
            return True
    return False


def _possible_errors(method: str, path: str, op: dict[str, Any], schemas: dict) -> set[str]:
    """The error statuses this operation can really answer."""
    if not path.startswith("/api/"):
        # Health, metrics and echo: not rate limited; 401/503 are declared by the route itself.
        return {"413", "415", "422"} if _has_body(op) else set()
    codes = {"401", "429", "503"}  # the production gate and the rate limiter cover every route
    if op.get("security") or (method, path) in OPEN_FORBIDDEN:
        codes.add("403")
    if _refers_to_existing(op, path, schemas):
        codes.add("404")
    if _has_body(op):
        codes |= {"413", "415", "422"}
    if (method, path) in CONFLICTS:
        codes.add("409")
    if (method, path) in FEATURE_OFF:
        codes.add("404")
    if op.get("parameters"):
        codes.add("422")
    return codes


def _teach(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ErrorResponse"] = ErrorResponse.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for name, sub in schemas["ErrorResponse"].pop("$defs", {}).items():
        schemas[name] = sub
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "A user token from `POST /api/v1/auth/login`, or the service "
            "`ACCESS_TOKEN`. Paste the token only (no `Bearer ` prefix).",
        }
    }
    schema["tags"] = TAGS
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            if op.get("security"):
                op["security"] = [{BEARER: []}]
            generated = op.get("operationId", "").split("_")[0].replace("-", " ")
            if (method, path) in SUMMARIES and (
                not op.get("summary")
                or op["summary"].lower() == generated.lower()
                or " " not in op["summary"]
                or op["summary"].istitle()
            ):
                op["summary"] = SUMMARIES[(method, path)]
            if (method, path) in REQUEST_EXAMPLES:
                media = op.get("requestBody", {}).get("content", {}).get("application/json")
                if media is not None and "examples" not in media:
                    media["example"] = REQUEST_EXAMPLES[(method, path)]
            responses = op.setdefault("responses", {})
            possible = _possible_errors(method, path, op, schemas)
            own = OWN_ERRORS.get((method, path), set())
            for status in list(responses):
                if status in ERROR_DESCRIPTIONS and status not in possible | own:
                    del responses[status]
            for status in sorted(possible):
                entry = responses.setdefault(status, {})
                entry["description"] = ERROR_DESCRIPTIONS[status]
                entry["content"] = {"application/json": {"schema": _ERROR_REF}}
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def _refresh_clock_examples(schema: dict[str, Any]) -> None:
    """Examples that depend on the clock, set each time the document is served: the silence
    ends eight hours from now (`until` must lie in the future and within a year)."""
    method, path = SILENCE
    op = schema.get("paths", {}).get(path, {}).get(method, {})
    media = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if isinstance(media.get("example"), dict):
        until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=8)
        media["example"]["until"] = until.isoformat().replace("+00:00", "Z")


def documented_routes(app: FastAPI) -> list[BaseRoute]:
    """The app's routes in the order the OpenAPI document lists them: the routers' order,
    which `app.main.add_routes` records before it moves the hot routes to the front."""
    ordered: list[BaseRoute] = list(getattr(app.state, "documented_routes", []))
    known = {id(route) for route in ordered}
    return ordered + [route for route in app.routes if id(route) not in known]


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` with the generated document plus the teaching above (cached;
    only the clock-dependent examples change between calls)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=documented_routes(app),
            )
            app.openapi_schema = _teach(copy.deepcopy(schema))
        _refresh_clock_examples(app.openapi_schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
