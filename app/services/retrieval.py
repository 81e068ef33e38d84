"""Hybrid retrieval over knowledge chunks: BM25 on Korean-aware tokens fused with dense vectors.

The database holds every chunk with its tokens (`knowledge_chunks`) and a change log
(`knowledge_index_changes`). Each process keeps an in-memory BM25 index of the chunks and,
before each search, applies the changes logged since it last looked (one indexed query when
nothing changed), so a document written through any process is searchable in every other one
— on SQLite or PostgreSQL, with or without Redis — without rebuilding anything per query.

The same mirror decides what may reach an answer: a dense hit whose id is not a chunk in the
database (a document deleted meanwhile, a leftover of an old version) is dropped.

Ranking: BM25 (k1=1.2, b=0.75) and the vector ranking are fused by weighted reciprocal rank
fusion (k=10; the dense weight is 2.0 for questions without Hangul and 0.1 for Korean ones,
because the packaged MiniLM model is English-only — see the README's eval table); identical
passages (same text in several chunks or documents) appear once.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from loguru import logger
from sqlalchemy.exc import IntegrityError

from app.clients.vector_store import ChunkHit, CollectionMissing, VectorStore
from app.core.database import Database
from app.core.errors import Unavailable
from app.core.settings import LLMSettings
from app.core.tokenizer import Tokenizer, has_hangul
from app.repositories.knowledge import KnowledgeChunkRepository, StoredChunk

GENERATION = "generation"
COLLECTION = "collection"
# A gap in the change log (a transaction that took its seq but had not committed yet when we
# looked) is re-checked for this long before it is given up as rolled back.
GAP_GRACE_SECS = 30.0
# More changes than this since the last look: reload everything instead.
MAX_INCREMENTAL = 5000


class RetrievalMode(StrEnum):
    """Which rankings a search uses (the evaluation compares all three)."""

    HYBRID = "hybrid"
    LEXICAL = "lexical"
    DENSE = "dense"


def passage_key(text: str) -> str:
    """Identical passages compare equal whatever their whitespace or case."""
    return re.sub(r"\s+", " ", text).strip().casefold()


class LexicalIndex:
    """An incremental BM25 index of chunks (thread-safe; add and remove per document).

    The postings (term → chunk id → tf) are the truth and change per document; each term
    searched also gets a compiled form (numpy arrays of chunk slots and tfs), rebuilt only
    when its postings changed, so that a search scores whole postings with a few vector
    operations instead of a Python loop per chunk (the same arithmetic, so the same scores).
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._postings: dict[str, dict[str, int]] = {}
        self._lengths: dict[str, int] = {}
        self._by_doc: dict[str, list[str]] = {}
        self._total = 0
        self._lock = threading.Lock()
        # A chunk id's slot in the arrays below (kept for the index's life, so a compiled
        # posting stays valid while its chunks live); `_live` is False for a removed chunk.
        self._slots: dict[str, int] = {}
        self._ids: list[str] = []
        self._slot_lengths = np.zeros(0)
        self._live = np.zeros(0, dtype=bool)
        self._compiled: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._lengths)

    def clear(self) -> None:
        with self._lock:
            self._postings.clear()
            self._lengths.clear()
            self._by_doc.clear()
            self._total = 0
            self._slots.clear()
            self._ids.clear()
            self._slot_lengths = np.zeros(0)
            self._live = np.zeros(0, dtype=bool)
            self._compiled.clear()

    def _slot(self, chunk_id: str) -> int:
        slot = self._slots.get(chunk_id)
        if slot is None:
            slot = self._slots[chunk_id] = len(self._ids)
            self._ids.append(chunk_id)
            if slot >= len(self._live):  # grow by doubling
                size = max(1024, 2 * len(self._live))
                self._slot_lengths = np.resize(self._slot_lengths, size)
                self._live = np.resize(self._live, size)
                self._live[slot:] = False
        return slot

    def _remove_locked(self, doc_id: str) -> None:
        for chunk_id in self._by_doc.pop(doc_id, []):
            length = self._lengths.pop(chunk_id, 0)
            self._total -= length
            self._live[self._slots[chunk_id]] = False
        # Postings are cleaned lazily: an id without a length is skipped and pruned when a
        # search meets it. (Scanning every term per removal would cost more than it saves.)

    def replace(self, doc_id: str, chunks: list[tuple[str, list[str]]]) -> None:
        """Set a document's chunks (id, tokens); an empty list removes the document."""
        with self._lock:
            self._remove_locked(doc_id)
            if not chunks:
                return
            self._by_doc[doc_id] = [chunk_id for chunk_id, _ in chunks]
            for chunk_id, tokens in chunks:
                slot = self._slot(chunk_id)
                self._live[slot] = True
                self._slot_lengths[slot] = len(tokens)
                self._lengths[chunk_id] = len(tokens)
                self._total += len(tokens)
                for term, tf in Counter(tokens).items():
                    self._postings.setdefault(term, {})[chunk_id] = tf
                    self._compiled.pop(term, None)

    def idf(self, term: str) -> float:
        """BM25 inverse document frequency of a term (0 for a term no chunk has)."""
        n = len(self._lengths)
        df = len(self._postings.get(term, ()))
        if n == 0 or df == 0:
            return 0.0
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def _posting(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """A term's live postings as (slots, tfs); prunes removed chunks first."""
        posting = self._postings.get(term)
        if not posting:
            return None
        compiled = self._compiled.get(term)
        if compiled is not None and self._live[compiled[0]].all():
            return compiled
        stale = [c for c in posting if c not in self._lengths]
        for chunk_id in stale:
            del posting[chunk_id]
        if not posting:
            del self._postings[term]
            self._compiled.pop(term, None)
            return None
        slots = np.fromiter((self._slots[c] for c in posting), np.int64, len(posting))
        tfs = np.fromiter(posting.values(), np.float64, len(posting))
        self._compiled[term] = (slots, tfs)
        return slots, tfs

    def search(self, tokens: list[str], limit: int) -> list[tuple[str, float]]:
        """The `limit` best (chunk id, BM25 score) pairs for the query tokens."""
        with self._lock:
            n = len(self._lengths)
            if n == 0 or not tokens or limit <= 0:
                return []
            average = self._total / n or 1.0
            k1, b = self.k1, self.b
            size = len(self._ids)
            scores = np.zeros(size)
            # Equal scores keep the order in which the terms' postings first reach a chunk.
            first = np.full(size, np.iinfo(np.int64).max)
            for i, term in enumerate(set(tokens)):
                compiled = self._posting(term)
                if compiled is None:
                    continue
                slots, tf = compiled
                df = len(slots)
                idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
                norm = k1 * (1.0 - b + b * self._slot_lengths[slots] / average)
                scores[slots] += idf * tf * (k1 + 1) / (tf + norm)
                first[slots] = np.minimum(first[slots], i * size + np.arange(df))
            return self._top(scores, first, limit)

    def _top(self, scores: np.ndarray, first: np.ndarray, limit: int) -> list[tuple[str, float]]:
        hit = np.flatnonzero(scores)  # every scored chunk has a positive score
        values = scores[hit]
        if len(hit) > limit:
            floor = np.partition(values, len(values) - limit)[len(values) - limit]
            keep = values >= floor
            hit, values = hit[keep], values[keep]
        order = np.lexsort((first[hit], -values))[:limit]
        pairs = zip(hit[order].tolist(), values[order].tolist(), strict=True)
        return [(self._ids[slot], score) for slot, score in pairs]


@dataclass(frozen=True, slots=True)
class RankedChunk:
    """A chunk with its place in each ranking (0 = not ranked) and its fused score."""

    chunk: StoredChunk
    score: float
    lexical_rank: int
    dense_rank: int
    # Cosine similarity to the question from the dense ranking (None: not among its candidates).
    similarity: float | None = None


class KnowledgeIndex:
    """The process's view of the knowledge chunks: BM25 index, chunk texts, active collection."""

    def __init__(
        self,
        database: Database,
        vector_store: VectorStore,
        tokenizer: Tokenizer,
        settings: LLMSettings,
    ) -> None:
        self.db = database
        self.vectors = vector_store
        self.tokenizer = tokenizer
        self.settings = settings
        self.lexical = LexicalIndex()
        self._chunks: dict[str, StoredChunk] = {}
        self._keys: dict[str, str] = {}  # chunk id → passage_key(text), filled by `fuse`
        self._by_doc: dict[str, list[str]] = {}
        self._generation: str | None = None
        self._seq = 0
        self._gaps: dict[int, float] = {}
        self._sync_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        # Kiwi's model loads in the background; the first document or question waits on it.
        threading.Thread(target=self._warm, name="tokenizer-load", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.tokenizer.warm()
        except Exception as exc:
            logger.error("Korean tokenizer failed to load: {}", exc)

    async def stop(self) -> None:
        return None

    # -- following the database ----------------------------------------------------------

    async def sync(self) -> None:
        """Apply what other writers (any process) changed since the last look."""
        async with self._sync_lock:
            async with self.db.sessions() as session:
                repo = KnowledgeChunkRepository(session)
                state = await repo.state()
                generation = state.get(GENERATION)
                if generation is None:
                    generation = await self._new_generation()
                self.vectors.active = state.get(COLLECTION) or self.settings.chroma_collection
                if generation != self._generation:
                    seq = await repo.max_seq()
                    chunks = await repo.stored()
                    await asyncio.to_thread(self._load_all, chunks)
                    self._generation, self._seq, self._gaps = generation, seq, {}
                    return
                changes = await repo.changes(self._seq, list(self._gaps))
                if not changes:
                    self._expire_gaps()
                    return
                if len(changes) > MAX_INCREMENTAL:  # cheaper to reload everything
                    seq = await repo.max_seq()
                    chunks = await repo.stored()
                    await asyncio.to_thread(self._load_all, chunks)
                    self._generation, self._seq, self._gaps = generation, seq, {}
                    return
                doc_ids = list({d for _, d in changes if d is not None})
                chunks = await repo.stored(doc_ids)
            await asyncio.to_thread(self._apply, doc_ids, chunks)
            self._advance([seq for seq, _ in changes])

    async def _new_generation(self) -> str:
        """First use of this database (or its tables were emptied): start a generation."""
        value = uuid.uuid4().hex
        try:
            async with self.db.sessions.begin() as session:
                await KnowledgeChunkRepository(session).set_state(GENERATION, value)
        except IntegrityError:  # another process started one at the same moment
            async with self.db.sessions() as session:
                value = (await KnowledgeChunkRepository(session).state())[GENERATION]
        return value

    def _advance(self, seen: list[int]) -> None:
        for seq in seen:
            self._gaps.pop(seq, None)
        top = max(seen)
        now = time.monotonic()
        expected = set(range(self._seq + 1, top + 1)) - set(seen)
        for seq in expected:
            self._gaps.setdefault(seq, now + GAP_GRACE_SECS)
        self._seq = max(self._seq, top)
        self._expire_gaps()

    def _expire_gaps(self) -> None:
        now = time.monotonic()
        for seq in [s for s, deadline in self._gaps.items() if deadline < now]:
            del self._gaps[seq]

    def _load_all(self, chunks: list[StoredChunk]) -> None:
        self.lexical.clear()
        self._chunks.clear()
        self._keys.clear()
        self._by_doc.clear()
        grouped: dict[str, list[StoredChunk]] = {}
        for chunk in chunks:
            grouped.setdefault(str(chunk.doc_id), []).append(chunk)
        for doc_id, items in grouped.items():
            self._set_doc(doc_id, items)

    def _apply(self, doc_ids: list[uuid.UUID], chunks: list[StoredChunk]) -> None:
        grouped: dict[str, list[StoredChunk]] = {str(d): [] for d in doc_ids}
        for chunk in chunks:
            grouped[str(chunk.doc_id)].append(chunk)
        for doc_id, items in grouped.items():
            self._set_doc(doc_id, items)

    def _set_doc(self, doc_id: str, items: list[StoredChunk]) -> None:
        for chunk_id in self._by_doc.pop(doc_id, []):
            self._chunks.pop(chunk_id, None)
            self._keys.pop(chunk_id, None)
        self.lexical.replace(doc_id, [(c.id, c.tokens.split()) for c in items])
        if items:
            self._by_doc[doc_id] = [c.id for c in items]
            for c in items:
                self._chunks[c.id] = c

    def reset(self) -> None:
        """Forget everything (the next search reloads from the database)."""
        self._generation = None

    # -- searching -----------------------------------------------------------------------

    def chunk(self, chunk_id: str) -> StoredChunk | None:
        return self._chunks.get(chunk_id)

    def __len__(self) -> int:
        return len(self._chunks)

    def tokens(self, text: str) -> list[str]:
        """Ranking tokens (blocking: Kiwi)."""
        return self.tokenizer.tokens(text)

    async def _dense(self, embedding: list[float], limit: int) -> list[tuple[str, float]]:
        """The vector ranking, unfiltered: the caller keeps the ids the index knows."""
        if not self._chunks:
            return []
        try:
            return await self.vectors.nearest(embedding, min(limit, len(self._chunks)))
        except CollectionMissing:
            await self.sync()
            try:
                return await self.vectors.nearest(embedding, min(limit, len(self._chunks)))
            except Unavailable:
                return []
        except Unavailable as exc:
            # The lexical ranking still answers while the vector store is down (or was built
            # by another embedder: the message says to reindex).
            logger.warning("dense retrieval skipped: {}", exc.message)
            return []

    async def search(
        self,
        question: str,
        embedding: list[float] | None,
        top_k: int,
        mode: RetrievalMode = RetrievalMode.HYBRID,
    ) -> list[RankedChunk]:
        """The `top_k` best distinct passages for a question."""
        candidates = max(self.settings.retrieval_candidates, top_k * 4)
        # Once the index is loaded, the change-log check runs beside Kiwi and the Chroma
        # query (neither needs it); BM25 and the filtering of dense hits wait for it.
        synced = asyncio.ensure_future(self.sync())
        if self._generation is None or len(self._chunks) < candidates:
            await synced  # not loaded yet, or small: check first (the query size depends on it)

        async def lexical_ranking() -> list[str]:
            if mode is RetrievalMode.DENSE:
                return []
            tokens = await asyncio.to_thread(self.tokens, question)
            await synced
            found = await asyncio.to_thread(self.lexical.search, tokens, candidates)
            return [chunk_id for chunk_id, _ in found if chunk_id in self._chunks]

        async def dense_ranking() -> list[tuple[str, float]]:
            if mode is RetrievalMode.LEXICAL or embedding is None:
                return []
            collection = self.vectors.active
            hits = await self._dense(embedding, candidates)
            await synced
            if self.vectors.active != collection:  # the check saw a reindex switch: ask again
                hits = await self._dense(embedding, candidates)
            return [(chunk_id, score) for chunk_id, score in hits if chunk_id in self._chunks]

        # Kiwi + BM25 in worker threads, Chroma in another, side by side.
        _, lexical, dense = await asyncio.gather(synced, lexical_ranking(), dense_ranking())
        return self.fuse(lexical, [c for c, _ in dense], top_k, self.weights(question), dict(dense))

    def _passage_key(self, chunk: StoredChunk) -> str:
        # Computed once per chunk (an id names one text; `_set_doc` forgets removed ids).
        key = self._keys.get(chunk.id)
        if key is None:
            key = self._keys[chunk.id] = passage_key(chunk.text)
        return key

    def weights(self, question: str) -> tuple[float, float]:
        """(lexical, dense) fusion weights for a question: the dense model's weight depends
        on whether it understands the question's language."""
        dense = (
            self.settings.dense_weight_ko if has_hangul(question) else self.settings.dense_weight
        )
        return self.settings.lexical_weight, dense

    def fuse(
        self,
        lexical: list[str],
        dense: list[str],
        top_k: int,
        weights: tuple[float, float] = (1.0, 1.0),
        similarity: dict[str, float] | None = None,
    ) -> list[RankedChunk]:
        """Weighted reciprocal rank fusion; identical passages are kept once (the best).
        `similarity` (chunk id → the dense ranking's cosine) is kept on each result."""
        k = self.settings.fusion_k
        lex_rank = {chunk_id: i for i, chunk_id in enumerate(lexical, 1)}
        dense_rank = {chunk_id: i for i, chunk_id in enumerate(dense, 1)}
        scores: dict[str, float] = {}
        for chunk_id, rank in lex_rank.items():
            scores[chunk_id] = weights[0] / (k + rank)
        for chunk_id, rank in dense_rank.items():
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weights[1] / (k + rank)
        ranked: list[RankedChunk] = []
        seen: set[str] = set()
        for chunk_id, score in sorted(scores.items(), key=lambda item: -item[1]):
            chunk = self._chunks.get(chunk_id)
            if chunk is None:
                continue
            key = self._passage_key(chunk)
            if key in seen:
                continue
            seen.add(key)
            ranked.append(
                RankedChunk(
                    chunk,
                    score,
                    lex_rank.get(chunk_id, 0),
                    dense_rank.get(chunk_id, 0),
                    (similarity or {}).get(chunk_id),
                )
            )
            if len(ranked) == top_k:
                break
        return ranked


def as_hit(ranked: RankedChunk) -> ChunkHit:
    """A ranked chunk as the RAG pipeline's hit (score: the fused reciprocal-rank score)."""
    c = ranked.chunk
    return ChunkHit(
        doc_id=str(c.doc_id),
        title=c.title,
        chunk=c.text,
        score=round(ranked.score, 4),
        metadata={
            "doc_id": str(c.doc_id),
            "title": c.title,
            "section": c.section,
            "start": c.start,
            "end": c.end,
            "chunk_index": c.ordinal,
            "page": c.page,
            "similarity": ranked.similarity,
        },
        chunk_id=c.id,
    )
