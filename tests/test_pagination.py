"""Every list route: a constant number of SQL statements however many rows it returns (no N+1),
and the paged ones walk every row exactly once, newest first, by `next_cursor`."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from app.models.alert import AlertSilence
from app.models.base import utcnow
from app.models.job import Job, JobState
from app.models.knowledge import Conversation, KnowledgeDocument
from app.models.user import User
from tests.eventing import ABNORMAL, event

# Set only around a request under test: statements run by background loops are not counted.
_STATEMENTS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "statements", default=None
)


@contextmanager
def statements_of(app: Any) -> Iterator[list[str]]:
    """SQL statements executed on the app's engine by the code running inside the block."""
    engine = app.state.container.database().engine.sync_engine
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if _STATEMENTS.get() is not None:
            _STATEMENTS.get().append(statement)

    sa_event.listen(engine, "before_cursor_execute", before)
    token = _STATEMENTS.set(seen)
    try:
        yield seen
    finally:
        _STATEMENTS.reset(token)
        sa_event.remove(engine, "before_cursor_execute", before)


# -- seeding: `n` more rows of each list ------------------------------------------------------

Seeder = Callable[[Any, Any, int], Awaitable[None]]


async def _episodes_with_alerts(client: Any, _app: Any, n: int) -> None:
    """`n` abnormal one-event episodes (END without START), each with its alert and deliveries:
    one event, one source, one episode and one alert per row."""
    tag = uuid.uuid4().hex[:6]
    body = {"events": [event("END", f"cam-{tag}-{i}", seconds=i, probs=ABNORMAL) for i in range(n)]}
    r = await client.post("/api/v1/events/batch", json=body)
    assert r.status_code == 202, r.text


async def _rows(app: Any, rows: list[Any]) -> None:
    async with app.state.container.database().sessions.begin() as session:
        session.add_all(rows)


async def _documents(_client: Any, app: Any, n: int) -> None:
    await _rows(app, [KnowledgeDocument(title=f"Doc {i}", content="text") for i in range(n)])


async def _jobs(_client: Any, app: Any, n: int) -> None:
    await _rows(app, [Job(name="test.noop", state=JobState.succeeded) for _ in range(n)])


async def _silences(_client: Any, app: Any, n: int) -> None:
    ends = utcnow() + timedelta(hours=1)
    await _rows(app, [AlertSilence(source_pattern=f"cam-{i}", ends_at=ends) for i in range(n)])


async def _users(_client: Any, app: Any, n: int) -> None:
    await _rows(
        app,
        [User(email=f"u-{uuid.uuid4().hex[:8]}@example.com", password_hash="x") for _ in range(n)],
    )


async def _conversations(_client: Any, app: Any, n: int) -> None:
    await _rows(app, [Conversation(owner_id=None) for _ in range(n)])


LISTS: list[tuple[str, Seeder]] = [
    ("/api/v1/events", _episodes_with_alerts),
    ("/api/v1/events/recent", _episodes_with_alerts),
    ("/api/v1/episodes", _episodes_with_alerts),
    ("/api/v1/alerts", _episodes_with_alerts),
    ("/api/v1/sources", _episodes_with_alerts),
    ("/api/v1/knowledge/docs", _documents),
    ("/api/v1/jobs", _jobs),
    ("/api/v1/silences", _silences),
    ("/api/v1/admin/users", _users),
    ("/api/v1/rag/conversations", _conversations),
]


def _items(body: Any) -> list[Any]:
    return body if isinstance(body, list) else body["items"]


@pytest.mark.parametrize(("path", "seed"), LISTS, ids=[path for path, _ in LISTS])
async def test_a_list_runs_as_many_statements_for_20_rows_as_for_1(client, app, path, seed):
    await seed(client, app, 1)
    with statements_of(app) as one:
        r = await client.get(path)
    assert r.status_code == 200, r.text
    assert len(_items(r.json())) == 1
    await seed(client, app, 19)
    with statements_of(app) as twenty:
        r = await client.get(path)
    assert r.status_code == 200, r.text
    assert len(_items(r.json())) == 20
    if path != "/api/v1/events/recent":  # served from Redis when it is up
        assert one, "the statement counter saw nothing: is it listening on the app's engine?"
    assert len(twenty) == len(one), (one, twenty)


# -- walking pages ---------------------------------------------------------------------------

# (path, seeder, the field the list is ordered by, newest first, ties by id)
PAGED: list[tuple[str, Seeder, str]] = [
    ("/api/v1/events", _episodes_with_alerts, "timestamp"),
    ("/api/v1/episodes", _episodes_with_alerts, "started_at"),
    ("/api/v1/alerts", _episodes_with_alerts, "created_at"),
    ("/api/v1/knowledge/docs", _documents, "created_at"),
    ("/api/v1/jobs", _jobs, "created_at"),
]


async def _walk(client: Any, path: str, limit: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(100):
        r = await client.get(path, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        seen += page["items"]
        if page["next_cursor"] is None:
            return seen
        params["cursor"] = page["next_cursor"]
    raise AssertionError(f"{path} did not end after 100 pages")


@pytest.mark.parametrize(("path", "seed", "order"), PAGED, ids=[p for p, _, _ in PAGED])
async def test_following_next_cursor_returns_every_row_once_newest_first(
    client, app, path, seed, order
):
    await seed(client, app, 7)
    everything = _items((await client.get(path, params={"limit": 100})).json())
    assert len({row["id"] for row in everything}) == 7
    for limit in (1, 3, 7):
        walked = await _walk(client, path, limit)
        assert [row["id"] for row in walked] == [row["id"] for row in everything]
    newest_first = sorted(
        everything, key=lambda row: (_instant(row[order]), uuid.UUID(row["id"])), reverse=True
    )
    assert [row["id"] for row in everything] == [row["id"] for row in newest_first]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize(("path", "seed", "order"), PAGED, ids=[p for p, _, _ in PAGED])
async def test_a_tampered_cursor_is_422_invalid_cursor(client, app, path, seed, order):
    await seed(client, app, 2)
    cursor = (await client.get(path, params={"limit": 1})).json()["next_cursor"]
    assert cursor
    for tampered in ("A" + cursor[1:], cursor[: len(cursor) // 2]):
        r = await client.get(path, params={"cursor": tampered})
        assert r.status_code == 422, (tampered, r.text)
        assert r.json()["code"] == "invalid_cursor"
        r = await client.get(path, params={"cursor": tampered}, headers={"Accept-Language": "ko"})
        assert "next_cursor" in r.json()["detail"] and "올바르지" in r.json()["detail"]
