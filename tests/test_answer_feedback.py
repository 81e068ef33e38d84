"""👍/👎 on the assistant's answers: each recorded answer has a `turn_id`; its asker rates it
(rating again replaces the rating), nobody else can, and a 👎 may name the document that
should have answered."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from app.container import Container
from tests.fakes.fixtures import reset_rag_state
from tests.test_authz import PROD, account
from tests.test_rag_api import parse_sse

FALL = (
    "Fall alert procedure. When a fall alert fires, call the resident within two minutes. "
    "If nobody answers, send the on-call nurse to the room."
)
KO = {"Accept-Language": "ko-KR,ko;q=0.9"}


@pytest.fixture
async def prod(app, make_app, clean_state) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """A production app (sign-in required) with no LLM keys: answers are local extracts."""
    container = Container()
    container.embedder.override(providers.Object(app.state.container.embedder()))
    async with make_app(container, **PROD) as pair:
        await reset_rag_state(pair[0])
        yield pair
        await reset_rag_state(pair[0])


def _feedback_url(conversation_id: str, turn_id: str) -> str:
    return f"/api/v1/rag/conversations/{conversation_id}/turns/{turn_id}/feedback"


async def _document(client: httpx.AsyncClient, admin: dict[str, str], title: str) -> str:
    r = await client.post(
        "/api/v1/knowledge/docs", json={"title": title, "content": FALL}, headers=admin
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _ask(client: httpx.AsyncClient, headers: dict[str, str], question: str) -> dict:
    r = await client.post("/api/v1/rag/ask", json={"question": question}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_owner_rates_an_answer_and_rating_again_replaces_it(prod):
    app, client = prod
    admin = await account(app, client, "admin")
    viewer = await account(app, client, "viewer")  # the lowest signed-in role may rate
    doc = await _document(client, admin, "Fall alert procedure")
    answer = await _ask(client, viewer, "What do we do when a fall alert fires?")
    assert answer["provider"] == "local" and answer["turn_id"]
    url = _feedback_url(answer["conversation_id"], answer["turn_id"])

    r = await client.post(url, json={"rating": "up"}, headers=viewer)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["rating"] == "up" and first["comment"] is None and first["doc_id"] is None
    assert first["turn_id"] == answer["turn_id"]

    body = {"rating": "down", "comment": "2분 규칙이 빠졌습니다", "doc_id": doc}
    r = await client.post(url, json=body, headers=viewer)
    assert r.status_code == 200, r.text
    second = r.json()
    assert (second["rating"], second["comment"], second["doc_id"]) == ("down", body["comment"], doc)
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] > first["updated_at"]

    # The conversation read shows each answer's id and its (latest) rating.
    r = await client.get(f"/api/v1/rag/conversations/{answer['conversation_id']}", headers=viewer)
    assert r.status_code == 200, r.text
    (turn,) = r.json()["turns"]
    assert turn["turn_id"] == answer["turn_id"]
    assert turn["feedback"]["rating"] == "down" and turn["feedback"]["doc_id"] == doc


async def test_streamed_answer_names_its_turn_in_the_done_event(prod):
    app, client = prod
    viewer = await account(app, client, "viewer")
    r = await client.post(
        "/api/v1/rag/ask/stream", json={"question": "fall alert?"}, headers=viewer
    )
    assert r.status_code == 200, r.text
    events = dict(parse_sse(r.text))
    done = events["done"]
    assert done["turn_id"] and done["conversation_id"]
    r = await client.post(
        _feedback_url(done["conversation_id"], done["turn_id"]),
        json={"rating": "up"},
        headers=viewer,
    )
    assert r.status_code == 200, r.text


async def test_someone_elses_answer_reads_as_missing(prod):
    app, client = prod
    alice = await account(app, client, "viewer")
    bob = await account(app, client, "operator")
    admin = await account(app, client, "admin")
    answer = await _ask(client, alice, "fall alert?")
    url = _feedback_url(answer["conversation_id"], answer["turn_id"])
    for other in (bob, admin):  # admins may read a conversation, but only its owner rates it
        r = await client.post(url, json={"rating": "down"}, headers=other)
        assert r.status_code == 404 and r.json()["code"] == "conversation_not_found", r.text
    r = await client.get(f"/api/v1/rag/conversations/{answer['conversation_id']}", headers=alice)
    assert r.json()["turns"][0]["feedback"] is None


async def test_unknown_turn_or_conversation_is_a_404(prod):
    app, client = prod
    viewer = await account(app, client, "viewer")
    answer = await _ask(client, viewer, "fall alert?")
    other_turn = str(uuid.uuid4())
    r = await client.post(
        _feedback_url(answer["conversation_id"], other_turn), json={"rating": "up"}, headers=viewer
    )
    assert r.status_code == 404 and r.json()["code"] == "turn_not_found"
    assert other_turn in r.json()["detail"]
    r = await client.post(
        _feedback_url(answer["conversation_id"], other_turn),
        json={"rating": "up"},
        headers={**viewer, **KO},
    )
    assert "답변이 없습니다" in r.json()["detail"]
    r = await client.post(
        _feedback_url(str(uuid.uuid4()), answer["turn_id"]), json={"rating": "up"}, headers=viewer
    )
    assert r.status_code == 404 and r.json()["code"] == "conversation_not_found"


async def test_a_doc_id_that_is_not_a_document_is_refused_by_name(prod):
    app, client = prod
    viewer = await account(app, client, "viewer")
    answer = await _ask(client, viewer, "fall alert?")
    url = _feedback_url(answer["conversation_id"], answer["turn_id"])
    missing = str(uuid.uuid4())
    r = await client.post(url, json={"rating": "down", "doc_id": missing}, headers=viewer)
    assert r.status_code == 422 and r.json()["code"] == "unknown_document", r.text
    assert missing in r.json()["detail"]
    r = await client.post(url, json={"rating": "down", "doc_id": missing}, headers={**viewer, **KO})
    assert missing in r.json()["detail"] and "지식 문서가 없습니다" in r.json()["detail"]
    # Nothing was stored by the refused rating.
    r = await client.get(f"/api/v1/rag/conversations/{answer['conversation_id']}", headers=viewer)
    assert r.json()["turns"][0]["feedback"] is None


async def test_feedback_body_is_validated(prod):
    app, client = prod
    viewer = await account(app, client, "viewer")
    answer = await _ask(client, viewer, "fall alert?")
    url = _feedback_url(answer["conversation_id"], answer["turn_id"])
    for body in (
        {"rating": "meh"},
        {"rating": "down", "comment": "x" * 2001},
        {"rating": "down", "comment": "bad\x00byte"},
        {"rating": "down", "doc_id": "not-a-uuid"},
    ):
        r = await client.post(url, json=body, headers=viewer)
        assert r.status_code == 422, (body, r.text)


async def test_anonymous_conversations_are_open_in_development(client):
    r = await client.post("/api/v1/rag/ask", json={"question": "fall alert?"})
    assert r.status_code == 200, r.text
    answer = r.json()
    r = await client.post(
        _feedback_url(answer["conversation_id"], answer["turn_id"]),
        json={"rating": "up", "comment": "helpful"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["comment"] == "helpful"


async def test_deleting_the_named_document_keeps_the_rating_without_it(prod):
    app, client = prod
    admin = await account(app, client, "admin")
    viewer = await account(app, client, "viewer")
    doc = await _document(client, admin, "Fall alert procedure")
    answer = await _ask(client, viewer, "What do we do when a fall alert fires?")
    url = _feedback_url(answer["conversation_id"], answer["turn_id"])
    r = await client.post(url, json={"rating": "down", "doc_id": doc}, headers=viewer)
    assert r.status_code == 200, r.text
    r = await client.delete(f"/api/v1/knowledge/docs/{doc}", headers=admin)
    assert r.status_code == 204, r.text
    r = await client.get(f"/api/v1/rag/conversations/{answer['conversation_id']}", headers=viewer)
    feedback = r.json()["turns"][0]["feedback"]
    assert feedback["rating"] == "down" and feedback["doc_id"] is None
