"""Knowledge documents: the database is the source of truth, Chroma holds their chunks."""

from __future__ import annotations

import time
import uuid
from typing import Any

from app.clients.vector_store import VectorStore
from app.core.database import Database
from app.core.errors import Conflict, NotFound
from app.core.lock import LockService
from app.core.settings import LLMSettings
from app.models.base import utcnow
from app.models.knowledge import KnowledgeDocument
from app.repositories.knowledge import KnowledgeRepository
from app.repositories.rag_cache import IndexVersionStore
from app.services.event_knowledge import EventKnowledgeIndexer


class KnowledgeService:
    """Create, update, delete and (re)index knowledge documents."""

    def __init__(
        self,
        database: Database,
        vector_store: VectorStore,
        index_version: IndexVersionStore,
        locks: LockService,
        settings: LLMSettings,
        events: EventKnowledgeIndexer | None = None,
    ) -> None:
        self.db = database
        self.events = events
        self.vectors = vector_store
        self.index_version = index_version
        self.locks = locks
        from langchain_text_splitters import RecursiveCharacterTextSplitter  # heavy import

        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=settings.chunk_size,
            chunk_overlap=min(settings.chunk_overlap, settings.chunk_size // 2),
            separators=["\n\n", "\n", ". ", "? ", "! ", "。", " ", ""],
        )

    def chunk(self, doc: KnowledgeDocument) -> list[str]:
        return [c for c in self.splitter.split_text(doc.content) if c.strip()]

    async def _index(self, doc: KnowledgeDocument) -> int:
        chunks = self.chunk(doc)
        await self.vectors.replace_document(str(doc.id), doc.title, chunks)
        return len(chunks)

    async def create(
        self,
        title: str,
        content: str,
        source: str | None,
        metadata: dict[str, Any],
        refresh_vector: bool,
    ) -> KnowledgeDocument:
        async with self.db.sessions.begin() as session:
            doc = await KnowledgeRepository(session).add(
                KnowledgeDocument(title=title, content=content, source=source, meta=metadata)
            )
        if refresh_vector:
            await self._mark_indexed(doc.id, await self._index(doc))
            doc = await self.get(doc.id)
        await self.index_version.bump()
        return doc

    async def _mark_indexed(self, doc_id: uuid.UUID, chunks: int) -> None:
        async with self.db.sessions.begin() as session:
            doc = await KnowledgeRepository(session).get(doc_id)
            if doc is not None:
                doc.chunk_count = chunks
                doc.indexed_at = utcnow()

    async def get(self, doc_id: uuid.UUID) -> KnowledgeDocument:
        async with self.db.sessions() as session:
            doc = await KnowledgeRepository(session).get(doc_id)
        if doc is None:
            raise NotFound(f"No knowledge document with id {doc_id}", code="document_not_found")
        return doc

    async def page(self, offset: int, limit: int) -> tuple[list[KnowledgeDocument], int]:
        async with self.db.sessions() as session:
            rows, total = await KnowledgeRepository(session).page(offset, limit)
        return list(rows), total

    async def update(
        self, doc_id: uuid.UUID, changes: dict[str, Any], refresh_vector: bool
    ) -> KnowledgeDocument:
        async with self.db.sessions.begin() as session:
            doc = await KnowledgeRepository(session).get(doc_id)
            if doc is None:
                raise NotFound(f"No knowledge document with id {doc_id}", code="document_not_found")
            for field, value in changes.items():
                setattr(doc, "meta" if field == "metadata" else field, value)
            # Old chunks no longer match the text: they go now, new ones come with indexing.
            doc.chunk_count = 0
            doc.indexed_at = None
        if refresh_vector:
            await self._mark_indexed(doc.id, await self._index(doc))
        else:
            await self.vectors.delete_document(str(doc.id))
        await self.index_version.bump()
        return await self.get(doc_id)

    async def delete(self, doc_id: uuid.UUID) -> None:
        async with self.db.sessions.begin() as session:
            repo = KnowledgeRepository(session)
            doc = await repo.get(doc_id)
            if doc is None:
                raise NotFound(f"No knowledge document with id {doc_id}", code="document_not_found")
            await repo.delete(doc)
        await self.vectors.delete_document(str(doc_id))
        await self.index_version.bump()

    async def reindex(self) -> dict[str, Any]:
        """Rebuild the whole index from the database (one reindex at a time across processes)."""
        started = time.perf_counter()
        async with self.locks.lock("knowledge-reindex", ttl=600) as acquired:
            if not acquired:
                raise Conflict(
                    "A reindex is already running; wait for it to finish and retry",
                    code="reindex_running",
                )
            await self.vectors.clear()
            async with self.db.sessions() as session:
                ids = await KnowledgeRepository(session).all_ids()
            chunks = 0
            for doc_id in ids:
                async with self.db.sessions() as session:
                    doc = await KnowledgeRepository(session).get(doc_id)
                if doc is None:  # deleted meanwhile
                    continue
                n = await self._index(doc)
                await self._mark_indexed(doc_id, n)
                chunks += n
            # Closed episodes are summarised again from the database too.
            episodes = await self.events.rebuild() if self.events is not None else 0
            version = await self.index_version.bump()
        return {
            "documents": len(ids),
            "chunks": chunks,
            "episodes": episodes,
            "index_version": version,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    async def vector_health(self) -> dict[str, Any]:
        """`/health` component: the vector store and how many documents it should hold."""
        report = await self.vectors.health()
        try:
            async with self.db.sessions() as session:
                report["documents"] = await KnowledgeRepository(session).count()
        except Exception as exc:  # the database check reports its own failure
            report["documents_error"] = type(exc).__name__
        return report
