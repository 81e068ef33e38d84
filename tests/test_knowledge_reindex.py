"""Reindex safety against a real Chroma server (`chroma run`): two app instances (each with its
own Chroma handles and in-memory index, as two processes have) share the database and the
server; one reindexes again and again while the other writes. No write answers 5xx, nothing
written is missing afterwards, and `check` finds the database and the vectors in agreement."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for_job
from tests.live_server import free_port


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Chroma server process on loopback (the CLI ships with chromadb)."""
    chroma = shutil.which("chroma") or str(Path(__import__("sys").executable).parent / "chroma")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    process = subprocess.Popen(
        [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chroma run did not start")
            time.sleep(0.3)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


async def test_writes_through_a_second_process_survive_repeated_reindexes(
    make_app, chroma_server, clean_state
):
    llm = {
        "chroma_host": "127.0.0.1",
        "chroma_port": chroma_server,
        "chroma_collection": f"kb{uuid.uuid4().hex[:8]}",
    }
    async with make_app(llm=llm) as (first, one), make_app(llm=llm) as (second, two):
        for i in range(3):
            r = await one.post(
                "/api/v1/knowledge/docs",
                json={"title": f"기존 문서 {i}", "content": f"# 기존 {i}\n\n기존 내용 {i} 입니다."},
            )
            assert r.status_code == 201, r.text
        statuses: list[int] = []
        created: list[str] = []
        deleted: list[str] = []

        async def reindex_repeatedly() -> None:
            for _ in range(4):
                r = await one.post("/api/v1/knowledge/reindex")
                statuses.append(r.status_code)
                # A reindex is a background job: wait for it, so each one overlaps the writes.
                job = await wait_for_job(one, r.json()["id"])
                assert job["state"] == "succeeded", job
                await asyncio.sleep(0.05)

        async def write_meanwhile() -> None:
            for i in range(16):
                r = await two.post(
                    "/api/v1/knowledge/docs",
                    json={
                        "title": f"점검 문서 {i}",
                        "content": f"# 점검 {i}\n\n## 절차\n\n점검 코드 CHECK_{i}_OK 를 확인한다.",
                    },
                )
                statuses.append(r.status_code)
                if r.status_code == 201:
                    created.append(r.json()["id"])
                if i % 4 == 3 and created:
                    doc_id = created.pop(0)
                    r = await two.delete(f"/api/v1/knowledge/docs/{doc_id}")
                    statuses.append(r.status_code)
                    deleted.append(doc_id)
                if i % 5 == 4 and created:
                    r = await two.patch(
                        f"/api/v1/knowledge/docs/{created[-1]}",
                        json={"content": f"# 갱신\n\n갱신된 점검 코드 UPDATED_{i} 를 확인한다."},
                    )
                    statuses.append(r.status_code)

        await asyncio.gather(reindex_repeatedly(), write_meanwhile())
        assert statuses and all(s < 500 for s in statuses), statuses

        # Every process agrees: each surviving document's chunks have vectors, nothing else.
        for app in (first, second):
            report = await app.state.container.knowledge_service().check()
            assert report.consistent, report
            assert report.chunks == report.vectors > 0
        # A document written during the reindexes is found by the other process.
        r = await one.post("/api/v1/rag/ask", json={"question": "CHECK_15_OK 점검 코드"})
        assert r.status_code == 200, r.text
        assert r.json()["sources"][0]["title"] == "점검 문서 15"
        # A deleted document never reaches an answer.
        titles = {s["title"] for s in r.json()["sources"]}
        docs = (await two.get("/api/v1/knowledge/docs", params={"limit": 200})).json()["items"]
        assert titles <= {d["title"] for d in docs}
        assert not set(deleted) & {d["id"] for d in docs}


async def test_check_repair_restores_lost_vectors_and_drops_orphans(
    make_app, chroma_server, clean_state
):
    llm = {
        "chroma_host": "127.0.0.1",
        "chroma_port": chroma_server,
        "chroma_collection": f"kb{uuid.uuid4().hex[:8]}",
    }
    async with make_app(llm=llm) as (app, client):
        r = await client.post(
            "/api/v1/knowledge/docs", json={"title": "런북", "content": "# 런북\n\n재시작 절차."}
        )
        assert r.status_code == 201
        container = app.state.container
        store = container.vector_store()
        await store.clear()  # e.g. the Chroma data was lost
        from app.clients.vector_store import VectorChunk

        await store.upsert_chunks(
            [VectorChunk("orphan", "고아 벡터", "고아 벡터", {"doc_id": str(uuid.uuid4())})]
        )
        service = container.knowledge_service()
        report = await service.check()
        assert not report.consistent and report.orphans == ["orphan"] and report.missing
        repaired = await service.check(repair=True)
        assert repaired.repaired
        assert (await service.check()).consistent
