"""Knowledge assistant benchmark, against a local fake Gemini/OpenAI server (never the internet).

    uv run python bench/bench_rag.py                  # temp SQLite + on-disk Chroma, no Redis
    REDIS_URL=redis://127.0.0.1:6379/0 uv run python bench/bench_rag.py --n 300

Three measurements, each printed with its p50/p95 and its ratio to the real ceiling measured
in the same run:
  (a) ask-path overhead: a direct google-genai SDK call to the fake (the ceiling) vs the same call
      through Sentinel's client + router (cooldown check, stats) and through the whole ask
      service minus retrieval (prompt template, cache lookup, router, conversation write).
      Goal: <= 2 ms p50 added.
  (b) retrieval over 10 000 chunks: embedding the question + Chroma top-5, and Chroma alone, vs
      a brute-force numpy top-5 over the same vectors (the ceiling). The chunks get random unit
      vectors so building the index takes seconds, not minutes; query cost does not depend on
      the text.
  (c) a cached answer vs an answer from a provider that takes 200 ms (HTTP through the ASGI app).
      Goal: the cached answer >= 100x faster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.clients.llm.base import ChatMessage  # noqa: E402
from app.core.database import run_migrations  # noqa: E402
from app.core.settings import (  # noqa: E402
    DatabaseSettings,
    LLMSettings,
    LogSettings,
    RateLimitSettings,
    RedisSettings,
    Settings,
)
from app.main import create_app  # noqa: E402
from tests.fakes.llm import FakeLLMServer, Reply  # noqa: E402

DOC = (
    "Fall alert procedure. When a fall alert fires, call the resident within two minutes. "
    "If nobody answers, send the on-call nurse to the room. Log the alert outcome in the "
    "shift report before the end of the shift."
)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(fn: Callable[[int], Awaitable[Any]], n: int, warmup: int = 5) -> list[float]:
    for i in range(warmup):
        await fn(-1 - i)
    out = []
    for i in range(n):
        started = time.perf_counter()
        await fn(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def row(name: str, samples: list[float], ceiling: float | None, note: str = "") -> str:
    p50, p95 = statistics.median(samples), pct(samples, 0.95)
    ratio = f"{p50 / ceiling:8.2f}x" if ceiling else "  ceiling"
    return f"{name:<52} {len(samples):>5} {p50:>10.3f} {p95:>10.3f} {ratio}  {note}"


HEADER = f"{'measurement':<52} {'n':>5} {'p50 ms':>10} {'p95 ms':>10} {'vs ceil':>9}"


def build_settings(tmp: Path, fake: FakeLLMServer, **llm: Any) -> Settings:
    db_url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    return Settings(
        db=DatabaseSettings(url=db_url, migrate_on_start=False),
        redis=RedisSettings(
            url=os.environ.get("REDIS_URL", ""), key_prefix=f"bench-{uuid.uuid4().hex[:6]}:"
        ),
        log=LogSettings(level="WARNING", access_log=False),
        rate_limit=RateLimitSettings(enabled=False),
        llm=LLMSettings(
            gemini_api_key="bench-fake-key",
            gemini_base_url=fake.url,
            openai_api_key="",
            chroma_path=str(tmp / "chroma"),
            **llm,
        ),
    )


async def bench_overhead(app: Any, fake: FakeLLMServer, n: int) -> list[str]:
    from google import genai
    from google.genai import types

    container = app.state.container
    settings = container.settings().llm
    service = container.rag_service()
    router = container.llm_router()
    direct = genai.Client(
        api_key="bench-fake-key",
        http_options=types.HttpOptions(
            base_url=fake.url + "/",
            api_version="v1beta",
            timeout=30_000,
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )
    prep = await service.prepare("What do we do when a fall alert fires?", 5, None)
    messages = service.prompts.build(prep.question, prep.hits, [])
    system = messages[0].content
    user = messages[-1].content
    config = types.GenerateContentConfig(system_instruction=system, temperature=0.2)

    async def sdk(_: int) -> None:
        await direct.aio.models.generate_content(
            model=settings.primary_model, contents=user, config=config
        )

    async def routed(_: int) -> None:
        await router.complete([ChatMessage("system", system), ChatMessage("user", user)])

    async def retrieval(i: int) -> None:
        emb = (await container.embedder().aembed([f"What do we do on alert {i}?"], query=True))[0]
        await container.vector_store().query(emb.tolist(), 5)

    async def ask(i: int) -> None:
        await service.ask(f"What do we do when alert {i} fires?", 5, None)

    def prompt(_: int) -> Awaitable[None]:
        async def run() -> None:
            service.prompts.build(prep.question, prep.hits, [("earlier?", "earlier answer")])

        return run()

    async def cache_roundtrip(i: int) -> None:
        await container.index_version().current()
        await container.answer_cache().get(f"k{i}")
        await container.answer_cache().put(f"k{i}", '{"answer": "x"}', 300)

    async def conversation_write(i: int) -> None:
        result = {
            "answer": "a",
            "sources": prep.sources,
            "provider": "gemini",
            "model": "m",
            "cached": False,
            "degraded": True,  # not cached: only the conversation write is timed
        }
        prep.conversation_id, prep.new_conversation = uuid.uuid4(), True
        await service._remember(prep, result)

    direct_ms = await timed(sdk, n)
    prompt_ms = await timed(prompt, n)
    cache_ms = await timed(cache_roundtrip, n)
    convo_ms = await timed(conversation_write, n)
    routed_ms = await timed(routed, n)
    retrieval_ms = await timed(retrieval, n)
    settings.cache_ttl_secs = 0  # every ask goes to the provider
    ask_ms = await timed(ask, n)
    settings.cache_ttl_secs = 300
    ceiling = statistics.median(direct_ms)
    minus = [a - statistics.median(retrieval_ms) for a in ask_ms]
    added_router = statistics.median(routed_ms) - ceiling
    added_ask = statistics.median(minus) - ceiling
    return [
        row("(a) direct google-genai call to the fake", direct_ms, None),
        row(
            "(a) same call through client + router",
            routed_ms,
            ceiling,
            f"+{added_router:.3f} ms p50",
        ),
        row("(a) prompt from the LangChain template", prompt_ms, ceiling),
        row("(a) index version + exact cache get/put", cache_ms, ceiling),
        row("(a) conversation turn write (database)", convo_ms, ceiling),
        row("(a) retrieval alone (embed + Chroma top-5)", retrieval_ms, ceiling),
        row("(a) whole ask service, uncached", ask_ms, ceiling),
        row(
            "(a) whole ask service minus retrieval p50",
            minus,
            ceiling,
            f"+{added_ask:.3f} ms p50 (goal <= 2 ms)",
        ),
    ]


async def bench_retrieval(app: Any, n: int, chunks: int) -> list[str]:
    container = app.state.container
    store = container.vector_store()
    embedder = container.embedder()
    name = f"bench_{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(chunks, embedder.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def build() -> Any:
        collection = store._get_client().get_or_create_collection(
            name=name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        for start in range(0, chunks, 2000):
            stop = min(chunks, start + 2000)
            collection.add(
                ids=[f"c{i}" for i in range(start, stop)],
                embeddings=vectors[start:stop],
                documents=[f"chunk {i}" for i in range(start, stop)],
                metadatas=[{"doc_id": f"d{i // 10}", "title": "t"} for i in range(start, stop)],
            )
        return collection

    started = time.perf_counter()
    collection = await asyncio.to_thread(build)
    build_s = time.perf_counter() - started
    queries = rng.normal(size=(n + 10, embedder.dimension)).astype(np.float32)

    async def chroma_only(i: int) -> None:
        await asyncio.to_thread(
            collection.query,
            query_embeddings=[queries[i]],
            n_results=5,
            include=["documents", "metadatas", "distances"],
        )

    async def embed_and_query(i: int) -> None:
        emb = (await embedder.aembed([f"what happened at camera {i} last night?"], query=True))[0]
        await asyncio.to_thread(
            collection.query,
            query_embeddings=[emb],
            n_results=5,
            include=["documents", "metadatas", "distances"],
        )

    async def brute(i: int) -> None:
        scores = vectors @ queries[i]
        np.argpartition(-scores, 5)[:5]

    brute_ms = await timed(brute, n)
    chroma_ms = await timed(chroma_only, n)
    full_ms = await timed(embed_and_query, n)
    await asyncio.to_thread(store._get_client().delete_collection, name)
    ceiling = statistics.median(brute_ms)
    return [
        row(f"(b) numpy brute-force top-5 over {chunks} vectors", brute_ms, None),
        row(
            f"(b) Chroma HNSW top-5 over {chunks} chunks",
            chroma_ms,
            ceiling,
            f"index built in {build_s:.1f} s",
        ),
        row("(b) embed question + Chroma top-5", full_ms, ceiling),
    ]


async def bench_cache(
    client: httpx.AsyncClient, fake: FakeLLMServer, model: str, n: int
) -> list[str]:
    fake.default[model] = Reply.ok("Call the resident within two minutes [1].", delay=0.2)

    async def uncached(i: int) -> None:
        r = await client.post(
            "/api/v1/rag/ask", json={"question": f"Uncached question {i} {uuid.uuid4().hex}?"}
        )
        assert r.status_code == 200 and not r.json()["cached"], r.text

    async def cached(_: int) -> None:
        r = await client.post(
            "/api/v1/rag/ask", json={"question": "What do we do when a fall alert fires?"}
        )
        assert r.status_code == 200 and r.json()["cached"], r.text

    async def floor(_: int) -> None:
        assert (await client.get("/health/live")).status_code == 200

    floor_ms = await timed(floor, n)
    slow_ms = await timed(uncached, max(10, n // 10), warmup=1)
    await client.post(
        "/api/v1/rag/ask", json={"question": "What do we do when a fall alert fires?"}
    )
    fast_ms = await timed(cached, n)
    fake.default.pop(model)
    ratio = statistics.median(slow_ms) / statistics.median(fast_ms)
    return [
        row(
            "(c) /health/live through the same client (floor)", floor_ms, statistics.median(slow_ms)
        ),
        row("(c) ask with a 200 ms provider (uncached)", slow_ms, None),
        row(
            "(c) ask answered from the exact cache",
            fast_ms,
            statistics.median(slow_ms),
            f"{ratio:.0f}x faster (goal >= 100x)",
        ),
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="samples per measurement")
    parser.add_argument("--chunks", type=int, default=10_000)
    args = parser.parse_args()

    fake = FakeLLMServer().start()
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-") as tmp:
        settings = build_settings(Path(tmp), fake)
        await asyncio.to_thread(run_migrations, settings.db.url)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=60
            ) as client:
                r = await client.post(
                    "/api/v1/knowledge/docs", json={"title": "Fall", "content": DOC}
                )
                assert r.status_code == 201, r.text
                lines = [HEADER, "-" * len(HEADER)]
                lines += await bench_overhead(app, fake, args.n)
                lines += await bench_retrieval(app, args.n, args.chunks)
                lines += await bench_cache(client, fake, settings.llm.primary_model, args.n)
    fake.stop()
    redis = "Redis" if os.environ.get("REDIS_URL") else "in-process (no Redis)"
    print(
        f"\nSentinel RAG benchmark — fake provider on 127.0.0.1, SQLite, caches/cooldowns: {redis}"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
