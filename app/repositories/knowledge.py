"""SQL for knowledge documents; never commits (the service owns the transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.knowledge import KnowledgeDocument


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

    async def page(self, offset: int, limit: int) -> tuple[Sequence[KnowledgeDocument], int]:
        total = await self.session.scalar(select(func.count()).select_from(KnowledgeDocument))
        rows = await self.session.scalars(
            select(KnowledgeDocument)
            .order_by(KnowledgeDocument.created_at.desc(), KnowledgeDocument.id)
            .offset(offset)
            .limit(limit)
        )
        return rows.all(), int(total or 0)

    async def all_ids(self) -> list[uuid.UUID]:
        return list(await self.session.scalars(select(KnowledgeDocument.id)))

    async def count(self) -> int:
        return int(
            await self.session.scalar(select(func.count()).select_from(KnowledgeDocument)) or 0
        )
