"""Hybrid retrieval latency at 10 000 chunks (no LLM): BM25 over Kiwi tokens + Chroma + RRF.

    uv run python bench/bench_retrieval.py              # temp SQLite + on-disk Chroma
    uv run python bench/bench_retrieval.py --chunks 10000 --n 200

The seed documents' chunks are copied until there are `--chunks` of them (each copy gets a
distinct document id and one distinct word, so BM25 statistics look like a real corpus);
their vectors are random unit vectors (query cost does not depend on the text, and building
the index takes seconds instead of embedding 10 000 passages). Printed, each with p50/p99:
  hybrid       KnowledgeIndex.search: change-log check, Kiwi on the question, BM25 top-50,
               Chroma top-50, fusion (the question's embedding precomputed)
  +embed       the same plus embedding the question (MiniLM, CPU)
  lexical      change-log check, Kiwi and BM25 only
  chroma       the anchor: Chroma top-50 alone, the dense half
  numpy        the floor: brute-force numpy top-50 over the same vectors
Target: hybrid p50 <= 30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.clients.vector_store import VectorChunk  # noqa: E402
from app.container import Container  # noqa: E402
from app.core.database import run_migrations  # noqa: E402
from app.core.settings import DatabaseSettings, LLMSettings, RedisSettings, Settings  # noqa: E402
from app.models.knowledge import KnowledgeChunk, KnowledgeDocument  # noqa: E402
from app.repositories.knowledge import KnowledgeChunkRepository  # noqa: E402
from app.services.chunking import SectionChunker  # noqa: E402
from app.services.retrieval import RetrievalMode  # noqa: E402
from app.services.retrieval_eval import document_title  # noqa: E402

DATA = ROOT / "tests" / "data" / "rag"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(n: int, fn: Callable[[int], Awaitable[object]]) -> list[float]:
    for i in range(5):  # warm-up
        await fn(i)
    out = []
    for i in range(n):
        started = time.perf_counter()
        await fn(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def main(args: argparse.Namespace, settings: Settings) -> None:
    container = Container()
    container.settings.override(settings)
    index = container.knowledge_index()
    vectors = container.vector_store()
    db = container.database()
    chunker = SectionChunker(settings.llm.chunk_size)

    # Seed chunks with their tokens (Kiwi once per distinct passage).
    seeds = []
    for path in sorted((DATA / "seeds").iterdir()):
        text = path.read_text(encoding="utf-8")
        title = document_title(text, path.stem)
        for c in chunker.split(text):
            seeds.append((title, c, index.tokens(f"{title}\n{c.section}\n{c.text}")))
    copies = -(-args.chunks // len(seeds))
    rng = np.random.default_rng(7)
    dim = container.embedder().dimension
    matrix = []
    started = time.perf_counter()
    total = 0
    for copy in range(copies):
        rows: list[KnowledgeChunk] = []
        docs: dict[str, uuid.UUID] = {}
        for title, c, tokens in seeds:
            if total >= args.chunks:
                break
            doc_id = docs.setdefault(title, uuid.uuid4())
            rows.append(
                KnowledgeChunk(
                    id=c.chunk_id(doc_id),
                    doc_id=doc_id,
                    ordinal=c.ordinal,
                    section=c.section,
                    start_offset=c.start,
                    end_offset=c.end,
                    text=c.text,
                    tokens=" ".join([*tokens, f"copy{copy}"]),
                )
            )
            total += 1
        async with db.sessions.begin() as session:
            repo = KnowledgeChunkRepository(session)
            for title, doc_id in docs.items():
                session.add(KnowledgeDocument(id=doc_id, title=f"{title} #{copy}", content=""))
            await session.flush()
            session.add_all(rows)
            for doc_id in docs.values():
                await repo.log_change(doc_id)
        vecs = rng.normal(size=(len(rows), dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        matrix.append(vecs)
        await vectors.ensure_active()

        def write(rows: list[KnowledgeChunk] = rows, vecs: np.ndarray = vecs) -> None:
            collection = vectors._collection(vectors.active)
            collection.upsert(
                ids=[r.id for r in rows],
                documents=[r.text for r in rows],
                embeddings=vecs,
                metadatas=[{"doc_id": str(r.doc_id)} for r in rows],
            )

        await asyncio.to_thread(write)
    _ = VectorChunk  # the same store the app writes through
    all_vectors = np.concatenate(matrix)
    await index.sync()
    print(f"built {len(index)} chunks in {time.perf_counter() - started:.1f}s", flush=True)

    questions = [
        json.loads(line)["question"] for line in (DATA / "ko.jsonl").read_text().splitlines()
    ]
    qvecs = container.embedder().embed(questions, query=True)
    k = 50

    async def hybrid(i: int) -> object:
        j = i % len(questions)
        return await index.search(questions[j], qvecs[j].tolist(), 5)

    async def with_embedding(i: int) -> object:
        j = i % len(questions)
        vector = (await container.embedder().aembed([questions[j]], query=True))[0]
        return await index.search(questions[j], vector.tolist(), 5)

    async def lexical(i: int) -> object:
        j = i % len(questions)
        return await index.search(questions[j], None, 5, RetrievalMode.LEXICAL)

    async def chroma(i: int) -> object:
        return await vectors.query(qvecs[i % len(questions)].tolist(), k)

    async def brute(i: int) -> object:
        scores = all_vectors @ qvecs[i % len(questions)]
        return np.argpartition(-scores, k)[:k]

    results = {}
    for name, fn in [
        ("hybrid", hybrid),
        ("+embed", with_embedding),
        ("lexical", lexical),
        ("chroma", chroma),
        ("numpy", brute),
    ]:
        results[name] = await timed(args.n, fn)
    anchor = statistics.median(results["chroma"])
    print(f"{'path':<9} {'p50 ms':>8} {'p99 ms':>8} {'x chroma':>9}")
    for name, values in results.items():
        p50 = statistics.median(values)
        print(f"{name:<9} {p50:>8.2f} {pct(values, 0.99):>8.2f} {p50 / anchor:>9.2f}")
    await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=200)
    workdir = tempfile.mkdtemp(prefix="sentinel-bench-retrieval-")
    bench_settings = Settings(
        db=DatabaseSettings(url=f"sqlite+aiosqlite:///{workdir}/bench.db"),
        redis=RedisSettings(url=""),
        llm=LLMSettings(chroma_path=f"{workdir}/chroma", chroma_host=""),
    )
    run_migrations(bench_settings.db.url)
    asyncio.run(main(parser.parse_args(), bench_settings))
