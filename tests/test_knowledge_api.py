"""Knowledge documents through the HTTP API: CRUD, chunking into Chroma, reindex."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import wait_for_job

FALL = (
    "Fall alert procedure. When a fall alert fires, call the resident within two minutes. "
    "If nobody answers, send the on-call nurse to the room."
)
FIRE = "Fire drill. The fire drill happens every first Monday at 10:00 in the east wing."


@pytest.fixture(autouse=True)
async def empty_index(app):
    """Each test starts with an empty vector index and no cached answers."""
    container = app.state.container
    await container.vector_store().clear()
    await container.vector_store().clear_questions()
    container.answer_cache().clear_local()
    yield


async def _create(client, title: str, content: str, **extra) -> dict:
    r = await client.post(
        "/api/v1/knowledge/docs", json={"title": title, "content": content, **extra}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_created_document_is_chunked_into_the_vector_store(client, app):
    doc = await _create(client, "Fall", FALL, source="manual.pdf", metadata={"lang": "en"})
    assert doc["indexed"] is True and doc["chunk_count"] >= 1
    assert doc["metadata"] == {"lang": "en"} and doc["source"] == "manual.pdf"
    assert await app.state.container.vector_store().count() == doc["chunk_count"]

    r = await client.get(f"/api/v1/knowledge/docs/{doc['id']}")
    assert r.status_code == 200 and r.json()["title"] == "Fall"


async def test_long_document_is_split_by_chunk_size(client, app):
    text = " ".join(f"Sentence number {i} about the night shift." for i in range(60))
    doc = await _create(client, "Long", text)
    size = app.state.container.settings().llm.chunk_size
    assert doc["chunk_count"] >= len(text) // size


async def test_refresh_vector_false_defers_indexing_until_reindex(client, app):
    doc = await _create(client, "Fire", FIRE, refresh_vector=False)
    assert doc["indexed"] is False
    store = app.state.container.vector_store()
    assert await store.count() == 0

    r = await client.post("/api/v1/knowledge/reindex")
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/api/v1/jobs/{r.json()['id']}"
    result = (await wait_for_job(client, r.json()["id"]))["result"]
    assert result["documents"] == 1 and result["chunks"] >= 1
    assert await store.count() == result["chunks"]
    assert (await client.get(f"/api/v1/knowledge/docs/{doc['id']}")).json()["indexed"] is True


async def test_update_replaces_old_chunks_and_delete_removes_them(client, app):
    store = app.state.container.vector_store()
    doc = await _create(client, "Fall", FALL)
    r = await client.patch(f"/api/v1/knowledge/docs/{doc['id']}", json={"content": FIRE})
    assert r.status_code == 200, r.text
    assert r.json()["content"] == FIRE
    embedding = (await app.state.container.embedder().aembed(["fire drill"]))[0].tolist()
    hits = await store.query(embedding, 5)
    assert [h.chunk for h in hits] == [FIRE]

    r = await client.delete(f"/api/v1/knowledge/docs/{doc['id']}")
    assert r.status_code == 204
    assert await store.count() == 0
    assert (await client.get(f"/api/v1/knowledge/docs/{doc['id']}")).status_code == 404


async def test_list_is_paged_by_cursor_newest_first(client):
    created = [
        (await _create(client, f"Doc {i}", FIRE, refresh_vector=False))["id"] for i in range(3)
    ]
    r = await client.get("/api/v1/knowledge/docs", params={"limit": 2})
    body = r.json()
    assert r.status_code == 200 and body["total"] == 3 and len(body["items"]) == 2
    assert body["next_cursor"]
    r = await client.get(
        "/api/v1/knowledge/docs", params={"limit": 2, "cursor": body["next_cursor"]}
    )
    last = r.json()
    assert len(last["items"]) == 1 and last["next_cursor"] is None
    assert [d["id"] for d in body["items"] + last["items"]] == created[::-1]


async def test_the_retired_offset_parameter_is_refused(client):
    r = await client.get("/api/v1/knowledge/docs", params={"offset": 2})
    assert r.status_code == 422 and r.json()["code"] == "offset_not_supported"


async def test_invalid_document_is_rejected_with_a_422(client):
    r = await client.post("/api/v1/knowledge/docs", json={"title": "  ", "content": "x"})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = await client.get(f"/api/v1/knowledge/docs/{uuid.uuid4()}")
    assert r.status_code == 404 and r.json()["code"] == "document_not_found"


async def test_health_reports_vector_store_counts(client):
    await _create(client, "Fall", FALL)
    r = await client.get("/health")
    vs = r.json()["services"]["vector_store"]
    assert vs["status"] == "healthy" and vs["documents"] == 1 and vs["chunks"] >= 1
