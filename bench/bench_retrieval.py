"""Hybrid retrieval latency at 10 000 and 100 000 chunks (no LLM), beside its two halves.

    uv run python bench/bench_retrieval.py                       # 10k and 100k, medians of 3
    uv run python bench/bench_retrieval.py --chunks 10000 --repeat 1 --n 100   # smoke

The seed documents' chunks are copied until there are `--chunks` of them (each copy gets a
distinct document id and one distinct word, so BM25 statistics look like a real corpus);
their vectors are random unit vectors (query cost does not depend on the text, and building
the index takes seconds instead of embedding 100 000 passages). Several sizes grow one index
(10k is measured, then 90k more are added and 100k is measured). Printed per size, each with
p50/p99 (medians over `--repeat` runs of `--n` searches) and the ratio to Chroma alone:
  hybrid       KnowledgeIndex.search: change-log check, Kiwi on the question, BM25 top-50,
               Chroma top-50, fusion (the question's embedding precomputed)
  +embed       the same plus embedding the question (MiniLM, CPU; --embed to include it)
  lexical      the BM25 anchor: change-log check, Kiwi and BM25 only
  chroma       the dense anchor: Chroma top-50 alone
  numpy        the floor: brute-force numpy top-50 over the same vectors
Target (issue 25): hybrid p99 <= 2x chroma p99 at 10k chunks, and measured at 100k.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.container import Container  # noqa: E402
from app.core.database import run_migrations  # noqa: E402
from app.core.settings import DatabaseSettings, LLMSettings, RedisSettings, Settings  # noqa: E402
from app.models.knowledge import (  # noqa: E402
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeIndexChange,
)
from app.services.chunking import Chunk, SectionChunker  # noqa: E402
from app.services.retrieval import KnowledgeIndex, RetrievalMode  # noqa: E402
from app.services.retrieval_eval import document_title  # noqa: E402

DATA = ROOT / "tests" / "data" / "rag"
K = 50
# Chunks written per transaction and per Chroma add (under Chroma's own batch limit).
BATCH = 5000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


async def timed(n: int, fn: Callable[[int], Awaitable[object]]) -> list[float]:
    for i in range(5):  # warm-up
        await fn(i)
    out = []
    for i in range(n):
        started = time.perf_counter()
        await fn(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


@dataclass
class Corpus:
    """The growing bench corpus: seed chunks with their tokens, and the vectors written."""

    seeds: list[tuple[str, Chunk, list[str]]]
    dim: int
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    copies: int = 0
    size: int = 0
    vectors: list[np.ndarray] = field(default_factory=list)

    def rows(self, target: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Documents and chunks (as insert rows) of the next copies, up to `target` chunks."""
        docs: list[dict[str, Any]] = []
        chunks: list[dict[str, Any]] = []
        while self.size + len(chunks) < target:
            ids: dict[str, uuid.UUID] = {}
            for title, c, tokens in self.seeds:
                if self.size + len(chunks) >= target:
                    break
                if title not in ids:
                    ids[title] = uuid.uuid4()
                    docs.append({"id": ids[title], "title": f"{title} #{self.copies}"})
                chunks.append(
                    {
                        "id": c.chunk_id(ids[title]),
                        "doc_id": ids[title],
                        "ordinal": c.ordinal,
                        "section": c.section,
                        "start_offset": c.start,
                        "end_offset": c.end,
                        "text": c.text,
                        "tokens": " ".join([*tokens, f"copy{self.copies}"]),
                    }
                )
            self.copies += 1
        return docs, chunks


async def grow(container: Container, corpus: Corpus, target: int) -> None:
    """Write chunks (database rows, change log, Chroma vectors) until there are `target`."""
    db = container.database()
    vectors = container.vector_store()
    await vectors.ensure_active()
    while corpus.size < target:
        docs, chunks = corpus.rows(min(target, corpus.size + BATCH))
        async with db.sessions.begin() as session:
            for doc in docs:
                doc["content"] = ""
            await session.execute(insert(KnowledgeDocument), docs)
            await session.execute(insert(KnowledgeChunk), chunks)
            await session.execute(insert(KnowledgeIndexChange), [{"doc_id": d["id"]} for d in docs])
        vecs = corpus.rng.normal(size=(len(chunks), corpus.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        corpus.vectors.append(vecs)

        def write(chunks: list[dict[str, Any]] = chunks, vecs: np.ndarray = vecs) -> None:
            vectors._collection(vectors.active).add(
                ids=[c["id"] for c in chunks],
                documents=[c["text"] for c in chunks],
                embeddings=vecs,
                metadatas=[{"doc_id": str(c["doc_id"])} for c in chunks],
            )

        await asyncio.to_thread(write)
        corpus.size += len(chunks)


async def seed_corpus(container: Container, index: KnowledgeIndex, settings: Settings) -> Corpus:
    chunker = SectionChunker(settings.llm.chunk_size)
    seeds = []
    for path in sorted((DATA / "seeds").iterdir()):
        text = path.read_text(encoding="utf-8")
        title = document_title(text, path.stem)
        for c in chunker.split(text):  # Kiwi once per distinct passage
            seeds.append((title, c, index.tokens(f"{title}\n{c.section}\n{c.text}")))
    return Corpus(seeds, container.embedder().dimension)


def paths(
    container: Container, index: KnowledgeIndex, corpus: Corpus, embed: bool
) -> dict[str, Callable[[int], Awaitable[object]]]:
    questions = [
        json.loads(line)["question"] for line in (DATA / "ko.jsonl").read_text().splitlines()
    ]
    qvecs = container.embedder().embed(questions, query=True)
    vectors = container.vector_store()
    all_vectors = np.concatenate(corpus.vectors)

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
        return await vectors.query(qvecs[i % len(questions)].tolist(), K)

    async def brute(i: int) -> object:
        scores = all_vectors @ qvecs[i % len(questions)]
        return np.argpartition(-scores, K)[:K]

    out: dict[str, Callable[[int], Awaitable[object]]] = {"hybrid": hybrid}
    if embed:
        out["+embed"] = with_embedding
    out.update(lexical=lexical, chroma=chroma, numpy=brute)
    return out


async def measure(
    fns: dict[str, Callable[[int], Awaitable[object]]], n: int, repeat: int
) -> dict[str, tuple[float, float]]:
    """(p50, p99) per path: the median over `repeat` runs, the paths interleaved per run."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            values = await timed(n, fn)
            runs[name].append((statistics.median(values), pct(values, 0.99)))
    return {
        name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
        for name, rs in runs.items()
    }


def report(size: int, results: dict[str, tuple[float, float]], before: str) -> None:
    a50, a99 = results["chroma"]
    print(f"\n{size} chunks (load before {before}, after {load()})")
    print(f"{'path':<9} {'p50 ms':>8} {'p99 ms':>8} {'p50 x chroma':>13} {'p99 x chroma':>13}")
    for name, (p50, p99) in results.items():
        print(f"{name:<9} {p50:>8.2f} {p99:>8.2f} {p50 / a50:>13.2f} {p99 / a99:>13.2f}")
    print(flush=True)


async def main(args: argparse.Namespace, settings: Settings) -> None:
    print(f"load at start {load()}; {os.cpu_count()} CPUs", flush=True)
    container = Container()
    container.settings.override(settings)
    index = container.knowledge_index()
    corpus = await seed_corpus(container, index, settings)
    for size in sorted(args.chunks):
        started = time.perf_counter()
        await grow(container, corpus, size)
        written = time.perf_counter()
        await index.sync()
        done = time.perf_counter()
        print(
            f"built {len(index)} chunks in {done - started:.1f}s (rows and vectors "
            f"{written - started:.1f}s, the index following them {done - written:.1f}s)",
            flush=True,
        )
        before = load()
        results = await measure(paths(container, index, corpus, args.embed), args.n, args.repeat)
        report(size, results, before)
    print(f"load at end {load()}")
    await container.database().dispose()


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=sizes, default=[10_000, 100_000])
    parser.add_argument("--n", type=int, default=300, help="searches per path per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median p50/p99 is kept")
    parser.add_argument("--embed", action="store_true", help="also time +embed (MiniLM)")
    workdir = tempfile.mkdtemp(prefix="sentinel-bench-retrieval-")
    bench_settings = Settings(
        db=DatabaseSettings(url=f"sqlite+aiosqlite:///{workdir}/bench.db"),
        redis=RedisSettings(url=""),
        llm=LLMSettings(chroma_path=f"{workdir}/chroma", chroma_host=""),
    )
    run_migrations(bench_settings.db.url)
    asyncio.run(main(parser.parse_args(), bench_settings))
