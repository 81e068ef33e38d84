"""Chroma vector store: a persistent client on disk, or a Chroma server when `CHROMA_HOST` is set.

Every Chroma call is blocking, so each public method runs it in a worker thread. Embeddings
always come from Sentinel's local `Embedder` (an explicit embedding function), never from a
Chroma default that might download a model.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from app.core.errors import Unavailable
from app.core.health import ComponentHealth
from app.core.settings import LLMSettings
from app.ml.embedding import Embedder


@dataclass(frozen=True, slots=True)
class ChunkHit:
    """One retrieved chunk; `score` is cosine similarity in [-1, 1] (higher is closer)."""

    doc_id: str
    title: str
    chunk: str
    score: float
    metadata: dict[str, Any]
    chunk_id: str = ""


@dataclass(frozen=True, slots=True)
class VectorChunk:
    """A chunk to store: its id, the text to embed, the text to keep and its metadata."""

    id: str
    embed_text: str
    text: str
    metadata: dict[str, Any]


class VectorStoreHealth(ComponentHealth):
    """`/health` component `vector_store`: the backend, its active collection and its size."""

    backend: str | None = None
    collection: str | None = None
    chunks: int | None = None
    embedding_model: str | None = None
    documents: int | None = None  # what the database holds (set by the knowledge service)
    documents_error: str | None = None


class CollectionMissing(Unavailable):
    """The collection was dropped (a reindex elsewhere switched to a new one): re-resolve."""


class EmbedderMismatch(Unavailable):
    """The collection holds vectors of another embedder (`EMBEDDING_BACKEND` changed)."""

    code = "embedder_mismatch"


class VectorStore:
    """Chunks of knowledge documents (and cached questions) in Chroma collections."""

    def __init__(self, settings: LLMSettings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._error: str | None = None
        self._connect_lock = threading.RLock()
        # The documents collection in use; a reindex builds a new one and switches this (the
        # name every process should use is kept in the database, see KnowledgeIndex).
        self.active = settings.chroma_collection

    # -- lifecycle -------------------------------------------------------------------

    def _connect(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        # Telemetry off: nothing leaves the machine.
        os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if self.settings.chroma_host:
            return chromadb.HttpClient(
                host=self.settings.chroma_host,
                port=self.settings.chroma_port,
                settings=chroma_settings,
            )
        Path(self.settings.chroma_path).mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=self.settings.chroma_path, settings=chroma_settings)

    def _get_client(self) -> Any:
        # Chroma's client registry is not safe to build from two threads at once.
        with self._connect_lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _open(self) -> None:
        try:
            self._collection(self.active)
        except Exception as exc:  # a Chroma server may be down; calls retry and report it
            self._error = f"{type(exc).__name__}: {exc}"
            logger.warning("vector store unavailable at start-up: {}", self._error)

    async def start(self) -> None:
        await asyncio.to_thread(self._open)

    async def stop(self) -> None:
        self._collections.clear()
        self._client = None

    def _collection(self, name: str, create: bool = True) -> Any:
        collection = self._collections.get(name)
        if collection is not None:
            return collection
        with self._connect_lock:
            return self._collection_locked(name, create)

    def _collection_locked(self, name: str, create: bool = True) -> Any:
        collection = self._collections.get(name)
        if collection is None:
            if self._client is None:
                self._client = self._connect()
            from app.clients.chroma_embedding import LocalEmbeddingFunction

            function = LocalEmbeddingFunction(self.embedder)
            # Each collection records the embedder that fills it (`embedder` in its metadata).
            metadata = {"hnsw:space": "cosine", "embedder": self.embedder.key}
            if create:
                collection = self._client.get_or_create_collection(
                    name=name, embedding_function=function, metadata=metadata
                )
            else:  # a dropped generation must not come back as an empty zombie
                collection = self._client.get_collection(name=name, embedding_function=function)
            built_by = (collection.metadata or {}).get("embedder")
            if not self._same_embedder(built_by):
                collection = self._replace_foreign(name, str(built_by or "minilm"), metadata)
            self._collections[name] = collection
            self._error = None
        return collection

    def _same_embedder(self, built_by: Any) -> bool:
        # Collections made before the tag existed were filled by a sentence-transformers model.
        if built_by is None:
            return self.embedder.backend == "minilm"
        return bool(built_by == self.embedder.key)

    def _replace_foreign(self, name: str, built_by: str, metadata: dict[str, Any]) -> Any:
        """A collection filled by another embedder: the event summaries and the answer cache
        are derived data and start empty again (a reindex refills the summaries); the
        documents need a reindex, and until then dense retrieval is refused."""
        if name not in (self.events_collection, self.question_collection):
            error = EmbedderMismatch(
                f"The knowledge index {name} was built with the {built_by} embedder but "
                f"EMBEDDING_BACKEND is {self.embedder.backend}; rebuild it with "
                "`sentinel knowledge check --repair` or POST /api/v1/knowledge/reindex"
            )
            self._error = error.message
            raise error
        logger.warning(
            "{} was built with the {} embedder: emptied for {}", name, built_by, self.embedder.key
        )
        from app.clients.chroma_embedding import LocalEmbeddingFunction

        self._client.delete_collection(name)
        return self._client.get_or_create_collection(
            name=name, embedding_function=LocalEmbeddingFunction(self.embedder), metadata=metadata
        )

    def _drop(self, name: str, recreate: bool) -> None:
        """Delete a collection (blocking; absent is fine), optionally creating it empty again."""
        client = self._get_client()
        self._collections.pop(name, None)
        try:
            client.delete_collection(name)
        except Exception as exc:  # absent already
            logger.debug("delete_collection {}: {}", name, type(exc).__name__)
        if recreate:
            self._collection(name)

    async def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except Unavailable:
            raise
        except Exception as exc:
            if _is_missing(exc):
                # Another process dropped it (a reindex switched collections): forget the
                # stale handles; the caller re-resolves the active name and retries.
                self._collections.clear()
                raise CollectionMissing(
                    "The knowledge index was switched by a reindex; retry",
                    code="vector_store_unavailable",
                ) from exc
            self._error = f"{type(exc).__name__}: {exc}"
            logger.warning("vector store call failed: {}", self._error)
            raise Unavailable(
                "The vector store is unavailable right now; check CHROMA_PATH/CHROMA_HOST "
                "and retry",
                code="vector_store_unavailable",
            ) from exc

    # -- documents -------------------------------------------------------------------

    async def upsert_chunks(self, items: list[VectorChunk], collection: str | None = None) -> None:
        """Embed and write chunks (an id already there is replaced)."""
        if not items:
            return

        def work() -> None:
            target = self._collection(collection or self.active, create=False)
            for start in range(0, len(items), 256):
                batch = items[start : start + 256]
                target.upsert(
                    ids=[c.id for c in batch],
                    documents=[c.text for c in batch],
                    embeddings=self.embedder.embed([c.embed_text for c in batch]),
                    metadatas=[c.metadata for c in batch],
                )

        await self._run(work)

    def _delete(self, collection: str | None, **selector: Any) -> None:
        try:
            target = self._collection(collection or self.active, create=False)
        except Exception as exc:
            if _is_missing(exc):  # nothing there, nothing to delete
                return
            raise
        target.delete(**selector)

    async def delete_ids(self, ids: list[str], collection: str | None = None) -> None:
        if ids:
            await self._run(lambda: self._delete(collection, ids=ids))

    async def delete_document(self, doc_id: str, collection: str | None = None) -> None:
        await self._run(lambda: self._delete(collection, where={"doc_id": doc_id}))

    async def ids(self, collection: str | None = None) -> dict[str, str]:
        """Every chunk id of a collection and the document it belongs to."""

        def work() -> dict[str, str]:
            target = self._collection(collection or self.active, create=False)
            out: dict[str, str] = {}
            offset = 0
            while True:
                page = target.get(include=["metadatas"], limit=5000, offset=offset)
                for chunk_id, meta in zip(page["ids"], page["metadatas"], strict=True):
                    out[chunk_id] = str((meta or {}).get("doc_id", ""))
                if len(page["ids"]) < 5000:
                    return out
                offset += 5000

        return await self._run(work)

    async def create_collection(self, name: str) -> None:
        """Create an empty collection (a reindex builds the next generation in it)."""
        await self._run(self._drop, name, True)

    async def drop_collection(self, name: str) -> None:
        await self._run(self._drop, name, False)

    async def ensure_active(self) -> None:
        """Create the active collection if it is missing (e.g. the Chroma data was lost)."""
        await self._run(lambda: self._collection(self.active, create=True))

    async def clear(self) -> None:
        """Remove every chunk of the active collection."""

        await self._run(self._drop, self.active, True)

    async def query(
        self,
        embedding: list[float],
        top_k: int,
        *,
        collection: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> list[ChunkHit]:
        """The `top_k` closest chunks of `collection` (the active documents one by default)."""

        def work() -> list[ChunkHit]:
            name = collection or self.active
            target = self._collection(name, create=name != self.active)
            result = target.query(
                query_embeddings=[embedding],
                n_results=top_k,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
            hits = []
            for chunk_id, text, meta, distance in zip(
                result["ids"][0],
                result["documents"][0],
                result["metadatas"][0],
                result["distances"][0],
                strict=True,
            ):
                hits.append(
                    ChunkHit(
                        doc_id=str(meta.get("doc_id")),
                        title=str(meta.get("title", "")),
                        chunk=text,
                        score=round(1.0 - float(distance), 4),
                        metadata=dict(meta),
                        chunk_id=chunk_id,
                    )
                )
            return hits

        return await self._run(work)

    async def count(self, collection: str | None = None) -> int:
        return await self._run(lambda: self._collection(collection or self.active).count())

    async def nearest(self, embedding: list[float], top_k: int) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the `top_k` closest chunks of the active collection:
        what `query` ranks, without reading the texts and metadata back (the knowledge index
        holds them), which is about half of a query's time."""

        def work() -> list[tuple[str, float]]:
            result = self._collection(self.active, create=False).query(
                query_embeddings=[embedding], n_results=top_k, include=["distances"]
            )
            pairs = zip(result["ids"][0], result["distances"][0], strict=True)
            return [(chunk_id, round(1.0 - float(distance), 4)) for chunk_id, distance in pairs]

        pairs: list[tuple[str, float]] = await self._run(work)
        return pairs

    async def _run_named(self, fn: Any) -> Any:
        """`_run` for a collection whose name never changes (event summaries, the answer cache).

        Another process may drop and recreate it (a reindex, a cache clear): the handle cached
        here then points at the dropped one. `_run` forgets stale handles, so one more try opens
        the live collection under the same name instead of losing the call.
        """
        try:
            return await self._run(fn)
        except CollectionMissing:
            return await self._run(fn)

    # -- event summaries (closed episodes and their alerts) ----------------------------------

    @property
    def events_collection(self) -> str:
        return f"{self.settings.chroma_collection}_events"

    async def upsert_events(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Write (id, text, metadata) summaries; an id already there is replaced."""
        if not items:
            return

        def work() -> None:
            texts = [text for _, text, _ in items]
            self._collection(self.events_collection).upsert(
                ids=[item_id for item_id, _, _ in items],
                documents=texts,
                embeddings=self.embedder.embed(texts),
                metadatas=[meta for _, _, meta in items],
            )

        await self._run_named(work)

    async def delete_events(self, ids: list[str]) -> None:
        """Remove these episode summaries (ids as written by `upsert_events`); unknown ids are ignored."""
        if ids:
            await self._run_named(lambda: self._collection(self.events_collection).delete(ids=ids))

    async def clear_events(self) -> None:
        await self._run(self._drop, self.events_collection, False)

    async def event_ids(self) -> list[str]:
        """Ids of every episode summary in the events collection."""

        def work() -> list[str]:
            return list(self._collection(self.events_collection).get(include=[])["ids"])

        return await self._run_named(work)

    # -- semantic answer cache -------------------------------------------------------

    @property
    def question_collection(self) -> str:
        return f"{self.settings.chroma_collection}_questions"

    async def put_question(
        self, key: str, embedding: list[float], payload: str, index_version: int, ttl: int
    ) -> None:
        def work() -> None:
            self._collection(self.question_collection).upsert(
                ids=[key],
                embeddings=[embedding],
                documents=[payload],
                metadatas=[{"index_version": index_version, "expires_at": time.time() + ttl}],
            )

        await self._run_named(work)

    async def nearest_question(
        self, embedding: list[float], index_version: int
    ) -> tuple[float, str] | None:
        """The closest cached question's (similarity, payload) for this index version."""

        def work() -> tuple[float, str] | None:
            collection = self._collection(self.question_collection)
            result = collection.query(
                query_embeddings=[embedding],
                n_results=1,
                where={
                    "$and": [
                        {"index_version": index_version},
                        {"expires_at": {"$gt": time.time()}},
                    ]
                },
                include=["documents", "distances"],
            )
            if not result["ids"][0]:
                return None
            return 1.0 - float(result["distances"][0][0]), result["documents"][0][0]

        return await self._run_named(work)

    async def clear_questions(self) -> None:
        def work() -> None:
            self._collections.pop(self.question_collection, None)
            if self._client is None:
                return
            try:
                self._client.delete_collection(self.question_collection)
            except Exception as exc:
                logger.debug("delete_collection: {}", type(exc).__name__)

        await self._run(work)

    # -- health ----------------------------------------------------------------------

    async def health(self) -> VectorStoreHealth:
        started = time.perf_counter()
        try:
            chunks = await self.count()
        except Unavailable:
            return VectorStoreHealth(status="down", error=self._error or "unavailable")
        return VectorStoreHealth(
            status="healthy",
            backend="http" if self.settings.chroma_host else "persistent",
            collection=self.active,
            chunks=chunks,
            embedding_model=self.embedder.label,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )


def _is_missing(exc: Exception) -> bool:
    """Chroma's "collection does not exist" (NotFoundError, or a ValueError on older clients)."""
    return type(exc).__name__ in ("NotFoundError", "InvalidCollectionException") or (
        "does not exist" in str(exc)
    )
