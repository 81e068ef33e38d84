"""Knowledge documents: the database is the source of truth (documents, their chunks and tokens);
Chroma holds the chunks' vectors.

Writes go database first (document, chunks and a change-log row in one transaction), then the
vector store. A vector write that fails undoes the database change, so a write that answers
5xx leaves nothing half-done behind. A reindex builds a new collection beside the active one,
switches the name stored in the database, copies over what was written meanwhile and only
then drops the old collection; every process follows the switch (see `KnowledgeIndex`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from loguru import logger

from app.clients.vector_store import (
    CollectionMissing,
    EmbedderMismatch,
    VectorChunk,
    VectorStore,
    VectorStoreHealth,
)
from app.core.database import Database
from app.core.errors import Conflict, NotFound, Unavailable, ValidationFailed
from app.core.lock import LockService
from app.core.settings import LLMSettings
from app.models.base import utcnow
from app.models.knowledge import KnowledgeChunk, KnowledgeDocument
from app.repositories.knowledge import KnowledgeChunkRepository, KnowledgeRepository
from app.repositories.pagination import Page
from app.repositories.rag_cache import IndexVersionStore
from app.services.chunking import SectionChunker
from app.services.document_files import (
    FIRST_PAGE,
    PAGE_STARTS,
    DocumentUnreadable,
    extract,
    page_at,
    without_pages,
)
from app.services.event_knowledge import EventKnowledgeIndexer
from app.services.retrieval import COLLECTION, KnowledgeIndex

# Fields of a document an update may change (and a failed update restores).
_FIELDS = ("title", "content", "source", "meta")
# The longest document content (DocumentCreate's limit); the bulk import splits longer files.
CONTENT_MAX = 1_000_000
# How many times a reindex copies over documents written while it was building.
_CATCH_UP_ROUNDS = 5
# One document's writes are serialised: a writer holds its lock at most this long (chunking
# and embedding a long document take seconds), and a second writer waits this long for it.
DOC_LOCK_TTL = 300.0
DOC_LOCK_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class ReindexReport:
    """What a reindex rebuilt (stored as the reindex job's result)."""

    documents: int
    chunks: int
    episodes: int
    index_version: int
    duration_ms: float


@dataclass(slots=True)
class IndexCheck:
    """Drift between the database's chunks and the active vector collection."""

    collection: str
    documents: int
    chunks: int
    vectors: int
    missing: list[str] = field(default_factory=list)  # chunk ids without a vector
    orphans: list[str] = field(default_factory=list)  # vectors without a chunk in the database
    unchunked: list[str] = field(default_factory=list)  # indexed documents without chunks
    repaired: bool = False

    @property
    def consistent(self) -> bool:
        return not (self.missing or self.orphans or self.unchunked)


def _copy_chunk(c: KnowledgeChunk) -> KnowledgeChunk:
    return KnowledgeChunk(
        id=c.id,
        doc_id=c.doc_id,
        ordinal=c.ordinal,
        section=c.section,
        start_offset=c.start_offset,
        end_offset=c.end_offset,
        text=c.text,
        tokens=c.tokens,
        page=c.page,
    )


class KnowledgeService:
    """Create, update, delete, (re)index and check knowledge documents."""

    def __init__(
        self,
        database: Database,
        vector_store: VectorStore,
        index_version: IndexVersionStore,
        locks: LockService,
        settings: LLMSettings,
        index: KnowledgeIndex,
        events: EventKnowledgeIndexer | None = None,
    ) -> None:
        self.db = database
        self.events = events
        self.vectors = vector_store
        self.index_version = index_version
        self.locks = locks
        self.index = index
        self.chunker = SectionChunker(settings.chunk_size)

    # -- chunks ----------------------------------------------------------------------------

    def _chunk_rows(
        self, doc_id: uuid.UUID, title: str, content: str, meta: dict[str, Any] | None = None
    ) -> list[KnowledgeChunk]:
        """Section-aware chunks with their ranking tokens and, for a document from a paged
        file, the page each starts on (blocking: Kiwi; run in a thread)."""
        rows = []
        for c in self.chunker.split(content):
            tokens = self.index.tokens(f"{title}\n{c.section}\n{c.text}")
            rows.append(
                KnowledgeChunk(
                    id=c.chunk_id(doc_id),
                    doc_id=doc_id,
                    ordinal=c.ordinal,
                    section=c.section[:500],
                    start_offset=c.start,
                    end_offset=c.end,
                    text=c.text,
                    tokens=" ".join(tokens),
                    page=page_at(meta, c.start),
                )
            )
        return rows

    @staticmethod
    def _vector_items(title: str, rows: list[KnowledgeChunk]) -> list[VectorChunk]:
        return [
            VectorChunk(
                id=r.id,
                # The heading path gives a short passage its context ("설정/튜닝 방법" alone
                # says little); the stored text stays the passage itself.
                embed_text=f"{title}\n{r.section}\n{r.text}",
                text=r.text,
                metadata={
                    "doc_id": str(r.doc_id),
                    "title": title,
                    "chunk_index": r.ordinal,
                    "section": r.section,
                    "start": r.start_offset,
                    "end": r.end_offset,
                    # Chroma keeps no None values: a chunk without a page has no key.
                    **({"page": r.page} if r.page is not None else {}),
                },
            )
            for r in rows
        ]

    async def _write_vectors(
        self, title: str, rows: list[KnowledgeChunk], stale: list[str]
    ) -> None:
        """Write a document's vectors into the active collection (following a switch)."""
        new_ids = {r.id for r in rows}
        for attempt in (1, 2):
            await self.index.sync()  # the collection every process uses now
            try:
                await self.vectors.upsert_chunks(self._vector_items(title, rows))
                await self.vectors.delete_ids([i for i in stale if i not in new_ids])
                return
            except CollectionMissing:
                if attempt == 2:
                    # The active collection itself is gone (lost Chroma data): recreate it.
                    await self.vectors.ensure_active()
                    await self.vectors.upsert_chunks(self._vector_items(title, rows))
                    return

    async def _drop_vectors(self, ids: list[str]) -> None:
        """Best effort: a vector left behind never reaches an answer (no chunk row)."""
        try:
            await self.index.sync()
            await self.vectors.delete_ids(ids)
        except Unavailable as exc:
            logger.warning("vectors of a deleted document stay until a check --repair: {}", exc)

    # -- documents -------------------------------------------------------------------------

    async def create(
        self,
        title: str,
        content: str,
        source: str | None,
        metadata: dict[str, Any],
        refresh_vector: bool,
    ) -> KnowledgeDocument:
        doc_id = uuid.uuid4()
        rows = (
            await asyncio.to_thread(self._chunk_rows, doc_id, title, content, metadata)
            if refresh_vector
            else []
        )
        async with self.db.sessions.begin() as session:
            doc = KnowledgeDocument(
                id=doc_id, title=title, content=content, source=source, meta=metadata
            )
            if refresh_vector:
                doc.chunk_count = len(rows)
                doc.indexed_at = utcnow()
            await KnowledgeRepository(session).add(doc)
            chunks = KnowledgeChunkRepository(session)
            await chunks.replace(doc_id, [_copy_chunk(r) for r in rows])
            await chunks.log_change(doc_id)
        if refresh_vector:
            try:
                await self._write_vectors(title, rows, [])
            except Unavailable:
                await self._undo_create(doc_id)
                raise
        await self.index_version.bump()
        return await self.get(doc_id)

    async def create_from_file(
        self,
        name: str,
        raw: bytes,
        title: str | None,
        source: str | None,
        refresh_vector: bool,
    ) -> KnowledgeDocument:
        """A document from an uploaded file (text, PDF, DOCX, HWP, HWPX): headings become its
        sections and a PDF's page starts go into its metadata (each chunk's page). Title: the
        one given, else the file's first heading, else its name without the extension."""
        try:
            found = await asyncio.to_thread(extract, name, raw)
        except DocumentUnreadable as exc:
            raise ValidationFailed(
                f"The file {name} cannot be read: {exc.reason}",
                code="document_unreadable",
                context={"name": name, "inner_reason": exc.reason},
            ) from exc
        if len(found.text) > CONTENT_MAX:
            raise ValidationFailed(
                f"The text of {name} is {len(found.text)} characters; one document holds at most "
                f"{CONTENT_MAX}: import it with POST /api/v1/knowledge/import, which splits it",
                code="document_too_long",
            )
        title = title or found.title or PurePosixPath(name).stem or "untitled"
        return await self.create(
            title[:300], found.text, source or name[:500], found.meta(), refresh_vector
        )

    async def _undo_create(self, doc_id: uuid.UUID) -> None:
        async with self.db.sessions.begin() as session:
            repo = KnowledgeRepository(session)
            doc = await repo.get(doc_id)
            chunks = KnowledgeChunkRepository(session)
            await chunks.replace(doc_id, [])
            if doc is not None:
                await repo.delete(doc)
            await chunks.log_change(doc_id)
        logger.warning("document {} not created: the vector store refused its chunks", doc_id)

    async def get(self, doc_id: uuid.UUID) -> KnowledgeDocument:
        async with self.db.sessions() as session:
            doc = await KnowledgeRepository(session).get(doc_id)
        if doc is None:
            raise NotFound(f"No knowledge document with id {doc_id}", code="document_not_found")
        return doc

    async def page(self, limit: int, cursor: str | None) -> tuple[Page[KnowledgeDocument], int]:
        """Documents newest first after `cursor`, and how many there are in all."""
        async with self.db.sessions() as session:
            repo = KnowledgeRepository(session)
            return await repo.page(limit, cursor), await repo.count()

    @asynccontextmanager
    async def _writing(self, doc_id: uuid.UUID) -> AsyncIterator[None]:
        """One writer per document at a time, across processes (Redis) or in this one.

        An update writes the database and then the vector store, outside one transaction:
        two interleaved updates each deleted only the vectors they had read as old, and the
        slower one's upsert left the faster one's chunks behind as orphans.
        """
        async with self.locks.lock(
            f"knowledge-doc:{doc_id}", ttl=DOC_LOCK_TTL, wait=DOC_LOCK_WAIT
        ) as acquired:
            if not acquired:
                raise Conflict(
                    f"Knowledge document {doc_id} is being changed by another request; "
                    "retry in a few seconds",
                    code="document_busy",
                    headers={"Retry-After": "2"},
                )
            yield

    async def update(
        self, doc_id: uuid.UUID, changes: dict[str, Any], refresh_vector: bool
    ) -> KnowledgeDocument:
        async with self._writing(doc_id):
            return await self._update(doc_id, changes, refresh_vector)

    async def _update(
        self, doc_id: uuid.UUID, changes: dict[str, Any], refresh_vector: bool
    ) -> KnowledgeDocument:
        changes = {("meta" if k == "metadata" else k): v for k, v in changes.items()}
        current = await self.get(doc_id)
        if "content" in changes and "meta" not in changes:
            # The file's page starts no longer fit edited text.
            changes["meta"] = without_pages(current.meta)
        elif "meta" in changes and "content" not in changes:
            # New metadata for the same text: the pages recorded from its file still hold.
            kept = {k: v for k, v in (current.meta or {}).items() if k in (PAGE_STARTS, FIRST_PAGE)}
            changes["meta"] = {**kept, **(changes["meta"] or {})}
        title = changes.get("title", current.title)
        content = changes.get("content", current.content)
        meta = changes.get("meta", current.meta)
        rows = (
            await asyncio.to_thread(self._chunk_rows, doc_id, title, content, meta)
            if refresh_vector
            else []
        )
        async with self.db.sessions.begin() as session:
            doc = await KnowledgeRepository(session).get(doc_id)
            if doc is None:
                raise NotFound(f"No knowledge document with id {doc_id}", code="document_not_found")
            chunks = KnowledgeChunkRepository(session)
            before = {f: getattr(doc, f) for f in _FIELDS}
            before_state = (doc.chunk_count, doc.indexed_at)
            old_rows = [_copy_chunk(c) for c in await chunks.of_document(doc_id)]
            for name, value in changes.items():
                setattr(doc, name, value)
            doc.chunk_count = len(rows)
            doc.indexed_at = utcnow() if refresh_vector else None
            await chunks.replace(doc_id, [_copy_chunk(r) for r in rows])
            await chunks.log_change(doc_id)
        old_ids = [r.id for r in old_rows]
        try:
            # Without refresh_vector there are no new rows: this only drops the old vectors.
            await self._write_vectors(title, rows, old_ids)
        except Unavailable:
            await self._undo_update(doc_id, before, before_state, old_rows)
            raise
        await self.index_version.bump()
        return await self.get(doc_id)

    async def _undo_update(
        self,
        doc_id: uuid.UUID,
        before: dict[str, Any],
        state: tuple[int, Any],
        old_rows: list[KnowledgeChunk],
    ) -> None:
        async with self.db.sessions.begin() as session:
            doc = await KnowledgeRepository(session).get(doc_id)
            if doc is None:
                return
            for name, value in before.items():
                setattr(doc, name, value)
            doc.chunk_count, doc.indexed_at = state
            chunks = KnowledgeChunkRepository(session)
            await chunks.replace(doc_id, old_rows)
            await chunks.log_change(doc_id)
        logger.warning("update of document {} undone: the vector store refused it", doc_id)

    async def delete(self, doc_id: uuid.UUID) -> None:
        async with self._writing(doc_id):
            await self._delete(doc_id)

    async def _delete(self, doc_id: uuid.UUID) -> None:
        async with self.db.sessions.begin() as session:
            repo = KnowledgeRepository(session)
            doc = await repo.get(doc_id)
            if doc is None:
                raise NotFound(f"No knowledge document with id {doc_id}", code="document_not_found")
            chunks = KnowledgeChunkRepository(session)
            old_ids = await chunks.ids_of(doc_id)
            await chunks.replace(doc_id, [])
            await repo.delete(doc)
            await chunks.log_change(doc_id)
        await self._drop_vectors(old_ids)
        await self.index_version.bump()

    # -- reindex ---------------------------------------------------------------------------

    async def _rechunk(self, doc_id: uuid.UUID) -> tuple[str, list[KnowledgeChunk]] | None:
        """Chunk a stored document again (the chunker may have changed); None if deleted."""
        doc = await self._get_or_none(doc_id)
        if doc is None:
            return None
        rows = await asyncio.to_thread(self._chunk_rows, doc_id, doc.title, doc.content, doc.meta)
        async with self.db.sessions.begin() as session:
            doc = await KnowledgeRepository(session).get(doc_id)
            if doc is None:
                return None
            chunks = KnowledgeChunkRepository(session)
            if {c.id for c in await chunks.of_document(doc_id)} != {r.id for r in rows}:
                # Only a changed chunking is a change other processes need to apply.
                await chunks.replace(doc_id, [_copy_chunk(r) for r in rows])
                await chunks.log_change(doc_id)
            doc.chunk_count = len(rows)
            doc.indexed_at = utcnow()
            title = doc.title
        return title, rows

    async def _get_or_none(self, doc_id: uuid.UUID) -> KnowledgeDocument | None:
        async with self.db.sessions() as session:
            return await KnowledgeRepository(session).get(doc_id)

    async def _copy_document(self, doc_id: uuid.UUID, collection: str) -> int:
        """Write a document's current chunks (from the database) into `collection`."""
        async with self.db.sessions() as session:
            doc = await KnowledgeRepository(session).get(doc_id)
            rows = await KnowledgeChunkRepository(session).of_document(doc_id)
        await self.vectors.delete_document(str(doc_id), collection)
        if doc is None:
            return 0
        await self.vectors.upsert_chunks(self._vector_items(doc.title, rows), collection)
        return len(rows)

    async def reindex(self) -> ReindexReport:
        """Rebuild the index from the database beside the active one, then switch to it.

        Readers and writers (in any process) keep using the old collection until the switch;
        documents written meanwhile are copied over after it, so none is missing afterwards.
        """
        started = time.perf_counter()
        async with self.locks.lock("knowledge-reindex", ttl=600) as acquired:
            if not acquired:
                raise Conflict(
                    "A reindex is already running; wait for it to finish and retry",
                    code="reindex_running",
                )
            await self.index.sync()
            old = self.vectors.active
            new = f"{self.vectors.settings.chroma_collection}_g{uuid.uuid4().hex[:12]}"
            async with self.db.sessions() as session:
                since = await KnowledgeChunkRepository(session).max_seq()
                ids = await KnowledgeRepository(session).all_ids()
            await self.vectors.create_collection(new)
            chunks = 0
            for doc_id in ids:
                done = await self._rechunk(doc_id)
                if done is None:  # deleted meanwhile
                    continue
                title, rows = done
                await self.vectors.upsert_chunks(self._vector_items(title, rows), new)
                chunks += len(rows)
            async with self.db.sessions.begin() as session:
                repo = KnowledgeChunkRepository(session)
                await repo.set_state(COLLECTION, new)
                switched = await repo.log_change(None)
            await self._catch_up(new, since, switched)
            await self.index.sync()
            if old != new:
                try:
                    await self.vectors.drop_collection(old)
                except Unavailable as exc:
                    logger.warning("old collection {} not dropped: {}", old, exc)
            # Closed episodes are summarised again from the database too.
            episodes = await self.events.rebuild() if self.events is not None else 0
            version = await self.index_version.bump()
        return ReindexReport(
            documents=len(ids),
            chunks=chunks,
            episodes=episodes,
            index_version=version,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def _catch_up(self, collection: str, since: int, switched: int) -> None:
        """Copy into the new collection every document changed after the build started.

        A writer commits its rows before it looks up the active collection, so a write the
        switch missed is in the change log read here, and one after it lands in `collection`.
        """
        done: set[int] = set()
        for _ in range(_CATCH_UP_ROUNDS):
            async with self.db.sessions() as session:
                changes = await KnowledgeChunkRepository(session).changes(since)
            pending = [(seq, d) for seq, d in changes if seq not in done and d is not None]
            if not pending and max((s for s, _ in changes), default=0) <= switched:
                return
            for doc_id in dict.fromkeys(d for _, d in pending):
                await self._copy_document(doc_id, collection)
            done.update(seq for seq, _ in changes)
            await asyncio.sleep(0.05)

    # -- consistency -----------------------------------------------------------------------

    async def check(self, repair: bool = False) -> IndexCheck:
        """Compare the database's chunks with the active collection; optionally fix both ways."""
        await self.index.sync()
        async with self.db.sessions() as session:
            id_map = await KnowledgeChunkRepository(session).id_map()
            documents = await KnowledgeRepository(session).count()
            unchunked = await KnowledgeRepository(session).indexed_without_chunks()
        try:
            vectors = await self.vectors.ids()
        except CollectionMissing:
            await self.vectors.ensure_active()
            vectors = {}
        except EmbedderMismatch:
            if not repair:
                raise
            # EMBEDDING_BACKEND changed: every vector is made again by the new embedder.
            logger.warning("rebuilding the knowledge index with {}", self.vectors.embedder.label)
            await self.reindex()
            vectors = await self.vectors.ids()
        report = IndexCheck(
            collection=self.vectors.active,
            documents=documents,
            chunks=len(id_map),
            vectors=len(vectors),
            missing=sorted(set(id_map) - set(vectors)),
            orphans=sorted(set(vectors) - set(id_map)),
            unchunked=[str(d) for d in unchunked],
        )
        if repair and not report.consistent:
            await self.vectors.delete_ids(report.orphans)
            docs = {id_map[i] for i in report.missing} | set(unchunked)
            for doc_id in docs:
                if doc_id in unchunked:
                    await self._rechunk(doc_id)
                await self._copy_document(doc_id, self.vectors.active)
            await self.index_version.bump()
            report.repaired = True
        return report

    async def vector_health(self) -> VectorStoreHealth:
        """`/health` component: the vector store and how many documents it should hold."""
        try:
            await self.index.sync()  # follow a switch made by another process
        except Exception as exc:  # the database check reports its own failure
            logger.debug("index sync before health: {}", type(exc).__name__)
        report = await self.vectors.health()
        try:
            async with self.db.sessions() as session:
                report.documents = await KnowledgeRepository(session).count()
        except Exception as exc:  # the database check reports its own failure
            report.documents_error = type(exc).__name__
        return report
