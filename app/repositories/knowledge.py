"""SQL for knowledge documents; never commits (the service owns the transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.knowledge import (
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeIndexChange,
    KnowledgeIndexState,
)
from app.repositories.pagination import Page, keyset_page


class KnowledgeRepository:
    """Queries on `knowledge_documents`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, doc_id: uuid.UUID) -> KnowledgeDocument | None:
        return await self.session.get(KnowledgeDocument, doc_id)

    async def add(self, doc: KnowledgeDocument) -> KnowledgeDocument:
        self.session.add(doc)
        await self.session.flush()
        return doc

    async def delete(self, doc: KnowledgeDocument) -> None:
        await self.session.delete(doc)
        await self.session.flush()

    async def page(self, limit: int, cursor: str | None) -> Page[KnowledgeDocument]:
        """Documents newest first, after `cursor`."""
        return await keyset_page(
            self.session,
            select(KnowledgeDocument),
            at=KnowledgeDocument.created_at,
            row_id=KnowledgeDocument.id,
            limit=limit,
            cursor=cursor,
        )

    async def all_ids(self) -> list[uuid.UUID]:
        return list(await self.session.scalars(select(KnowledgeDocument.id)))

    async def count(self) -> int:
        return int(
            await self.session.scalar(select(func.count()).select_from(KnowledgeDocument)) or 0
        )

    async def indexed_without_chunks(self) -> list[uuid.UUID]:
        """Documents marked indexed that have no chunk rows (e.g. indexed before chunks were
        kept in the database)."""
        has_chunks = select(KnowledgeChunk.doc_id).distinct()
        return list(
            await self.session.scalars(
                select(KnowledgeDocument.id).where(
                    KnowledgeDocument.indexed_at.is_not(None),
                    KnowledgeDocument.content != "",
                    KnowledgeDocument.id.not_in(has_chunks),
                )
            )
        )

    async def titles(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(KnowledgeDocument.id, KnowledgeDocument.title).where(
                KnowledgeDocument.id.in_(ids)
            )
        )
        return {row.id: row.title for row in rows}


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk row with its document's title (what the in-process index keeps)."""

    id: str
    doc_id: uuid.UUID
    title: str
    ordinal: int
    section: str
    start: int
    end: int
    text: str
    tokens: str
    page: int | None = None


class KnowledgeChunkRepository:
    """Queries on `knowledge_chunks`, the index change log and the index state."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace(self, doc_id: uuid.UUID, chunks: Sequence[KnowledgeChunk]) -> None:
        await self.session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.doc_id == doc_id))
        self.session.add_all(chunks)
        await self.session.flush()

    async def ids_of(self, doc_id: uuid.UUID) -> list[str]:
        return list(
            await self.session.scalars(
                select(KnowledgeChunk.id).where(KnowledgeChunk.doc_id == doc_id)
            )
        )

    async def of_document(self, doc_id: uuid.UUID) -> list[KnowledgeChunk]:
        return list(
            await self.session.scalars(
                select(KnowledgeChunk)
                .where(KnowledgeChunk.doc_id == doc_id)
                .order_by(KnowledgeChunk.ordinal)
            )
        )

    async def stored(self, doc_ids: Sequence[uuid.UUID] | None = None) -> list[StoredChunk]:
        """Chunks (of these documents, or all) with their titles, in document order."""
        query = select(KnowledgeChunk, KnowledgeDocument.title).join(
            KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.doc_id
        )
        if doc_ids is not None:
            if not doc_ids:
                return []
            query = query.where(KnowledgeChunk.doc_id.in_(doc_ids))
        rows = await self.session.execute(
            query.order_by(KnowledgeChunk.doc_id, KnowledgeChunk.ordinal)
        )
        return [
            StoredChunk(
                c.id,
                c.doc_id,
                title,
                c.ordinal,
                c.section,
                c.start_offset,
                c.end_offset,
                c.text,
                c.tokens,
                c.page,
            )
            for c, title in rows
        ]

    async def id_map(self) -> dict[str, uuid.UUID]:
        rows = await self.session.execute(select(KnowledgeChunk.id, KnowledgeChunk.doc_id))
        return {row.id: row.doc_id for row in rows}

    async def log_change(self, doc_id: uuid.UUID | None) -> int:
        change = KnowledgeIndexChange(doc_id=doc_id)
        self.session.add(change)
        await self.session.flush()
        return change.seq

    async def max_seq(self) -> int:
        return int(await self.session.scalar(select(func.max(KnowledgeIndexChange.seq))) or 0)

    async def changes(
        self, after: int, also: Sequence[int] = ()
    ) -> list[tuple[int, uuid.UUID | None]]:
        """Changes after `after` (and the listed older seqs), oldest first."""
        condition = KnowledgeIndexChange.seq > after
        if also:
            condition = condition | KnowledgeIndexChange.seq.in_(list(also))
        rows = await self.session.execute(
            select(KnowledgeIndexChange.seq, KnowledgeIndexChange.doc_id)
            .where(condition)
            .order_by(KnowledgeIndexChange.seq)
            .limit(5001)
        )
        return [(row.seq, row.doc_id) for row in rows]

    async def state(self) -> dict[str, str]:
        rows = await self.session.execute(
            select(KnowledgeIndexState.key, KnowledgeIndexState.value)
        )
        return {row.key: row.value for row in rows}

    async def set_state(self, key: str, value: str) -> None:
        row = await self.session.get(KnowledgeIndexState, key)
        if row is None:
            self.session.add(KnowledgeIndexState(key=key, value=value))
        else:
            row.value = value
        await self.session.flush()
