"""Knowledge documents: CRUD and reindex."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile, status

from app.api.authz import ADMINS, SIGNED_IN, GuardedRoute, require
from app.api.deps import get_knowledge_service
from app.api.paging import Cursor, refuse_offset
from app.api.v1.jobs import Jobs, accepted, created_by
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.core.security import Principal
from app.models.knowledge import KnowledgeDocument
from app.schemas.jobs import JobOut
from app.schemas.knowledge import (
    DocumentCreate,
    DocumentOut,
    DocumentPage,
    DocumentUpdate,
)
from app.services.jobs import JobName
from app.services.knowledge import KnowledgeService

router = APIRouter(
    route_class=GuardedRoute,
    prefix=f"{API_PREFIX}/knowledge",
    tags=["knowledge"],
    responses=COMMON_ERROR_RESPONSES,
)


Knowledge = Annotated[KnowledgeService, Depends(get_knowledge_service)]
ADMIN = [Depends(require(*ADMINS))]
READ = [Depends(require(*SIGNED_IN))]
AdminCaller = Annotated[Principal | None, Depends(require(*ADMINS))]


def _out(doc: KnowledgeDocument) -> DocumentOut:
    return DocumentOut.model_validate(
        {
            "id": doc.id,
            "title": doc.title,
            "content": doc.content,
            "source": doc.source,
            "meta": doc.meta or {},
            "chunk_count": doc.chunk_count,
            "indexed": doc.indexed_at is not None,
            "indexed_at": doc.indexed_at,
            "created_at": doc.created_at,
            "updated_at": doc.updated_at,
        }
    )


# Also accepted as a query parameter (`?refresh_vector=false`); it wins over the body field.
RefreshVector = Annotated[
    bool | None,
    Query(description="Index now (default) or defer to a reindex; overrides the body field"),
]


@router.post(
    "/docs", response_model=DocumentOut, status_code=status.HTTP_201_CREATED, dependencies=ADMIN
)
async def create_document(
    body: DocumentCreate, service: Knowledge, refresh_vector: RefreshVector = None
) -> DocumentOut:
    """Store a document and (unless `refresh_vector` is false) index its chunks."""
    refresh = body.refresh_vector if refresh_vector is None else refresh_vector
    doc = await service.create(body.title, body.content, body.source, body.metadata, refresh)
    return _out(doc)


@router.get("/docs", response_model=DocumentPage, dependencies=[*READ, Depends(refuse_offset)])
async def list_documents(
    service: Knowledge,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DocumentPage:
    """Documents newest first; follow `next_cursor` for more."""
    page, total = await service.page(limit, cursor)
    return DocumentPage(
        items=[_out(d) for d in page.items], next_cursor=page.next_cursor, total=total
    )


@router.get("/docs/{doc_id}", response_model=DocumentOut, dependencies=READ)
async def get_document(doc_id: uuid.UUID, service: Knowledge) -> DocumentOut:
    return _out(await service.get(doc_id))


@router.patch("/docs/{doc_id}", response_model=DocumentOut, dependencies=ADMIN)
async def update_document(
    doc_id: uuid.UUID,
    body: DocumentUpdate,
    service: Knowledge,
    refresh_vector: RefreshVector = None,
) -> DocumentOut:
    """Change fields; the document's old chunks are replaced."""
    changes = body.model_dump(exclude_unset=True, exclude={"refresh_vector"})
    refresh = body.refresh_vector if refresh_vector is None else refresh_vector
    return _out(await service.update(doc_id, changes, refresh))


@router.delete("/docs/{doc_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=ADMIN)
async def delete_document(doc_id: uuid.UUID, service: Knowledge) -> Response:
    """Delete the document and its chunks."""
    await service.delete(doc_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/reindex", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
async def reindex(jobs: Jobs, principal: AdminCaller, response: Response) -> JobOut:
    """Rebuild the vector index from the database, as a background job: 202 with the job;
    poll `GET /api/v1/jobs/{id}` for progress and the result."""
    job = await jobs.submit(JobName.REINDEX, {}, None, created_by(principal))
    return accepted(job, response)


@router.post("/import", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
async def import_documents(
    jobs: Jobs,
    principal: AdminCaller,
    response: Response,
    files: Annotated[
        list[UploadFile],
        File(description="Many .md/.txt/.pdf files, or one .zip of them"),
    ],
) -> JobOut:
    """Bulk import as a background job: each file becomes a document (title = file name),
    indexed as it is stored. 202 with the job; poll `GET /api/v1/jobs/{id}`."""
    uploads = [(f.filename or "unnamed.txt", await f.read()) for f in files]
    job = await jobs.submit_import(uploads, created_by(principal))
    return accepted(job, response)
