"""Knowledge documents: CRUD and reindex."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from app.api.authz import ADMINS, SIGNED_IN, GuardedRoute, require
from app.api.deps import get_knowledge_service
from app.api.paging import Cursor, refuse_offset
from app.api.v1.jobs import Jobs, accepted, created_by
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES, AppError
from app.core.security import Principal
from app.schemas.jobs import JobOut
from app.schemas.knowledge import (
    DocumentCreate,
    DocumentFileFields,
    DocumentOut,
    DocumentPage,
    DocumentUpdate,
)
from app.services.jobs import JobName
from app.services.knowledge import KnowledgeService

if TYPE_CHECKING:
    from app.models.knowledge import KnowledgeDocument

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


@dataclass(frozen=True)
class DocumentFile:
    """An uploaded document file and its form fields."""

    name: str
    data: bytes
    fields: DocumentFileFields


def _body_errors(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
    )


async def _document_body(request: Request) -> DocumentCreate | DocumentFile:
    """The JSON document, or a file sent as `multipart/form-data` (`file`, `title`, `source`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "multipart/form-data":
            form = await request.form()
            upload = form.get("file")
            if not isinstance(upload, StarletteUpload):
                raise RequestValidationError(
                    [{"loc": ("body", "file"), "msg": "Field required", "type": "missing"}]
                )
            # A blank form field (an empty title box) means "use the default", not an error.
            fields = {
                k: v for k, v in form.items() if k != "file" and isinstance(v, str) and v.strip()
            }
            return DocumentFile(
                upload.filename or "unnamed.txt",
                await upload.read(),
                DocumentFileFields.model_validate(fields),
            )
        if content_type and not content_type.endswith("json"):
            raise AppError(
                "Send the document as JSON (Content-Type: application/json) or its file as "
                "multipart/form-data with a `file` field",
                code="unsupported_media_type",
                status_code=415,
            )
        try:
            data = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": "body is not valid JSON", "type": "json_invalid"}]
            ) from exc
        return DocumentCreate.model_validate(data)
    except ValidationError as exc:
        raise _body_errors(exc) from exc


_DOCUMENT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": DocumentCreate.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A .md/.txt/.pdf/.docx/.hwp/.hwpx file; headings become "
                        "sections, tables rows of text, a PDF's pages each chunk's `page`",
                    },
                    "title": {
                        "type": "string",
                        "maxLength": 300,
                        "description": "Default: the file's first heading, else its name",
                    },
                    "source": {
                        "type": "string",
                        "maxLength": 500,
                        "description": "Default: the file name",
                    },
                    "refresh_vector": {"type": "boolean", "default": True},
                },
            }
        },
    },
}
DocumentBody = Annotated[DocumentCreate | DocumentFile, Depends(_document_body)]


@router.post(
    "/docs",
    response_model=DocumentOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=ADMIN,
    openapi_extra={"requestBody": _DOCUMENT_BODY},
)
async def create_document(
    body: DocumentBody, service: Knowledge, refresh_vector: RefreshVector = None
) -> DocumentOut:
    """Store a document and (unless `refresh_vector` is false) index its chunks: JSON with
    its text, or a file upload (`multipart/form-data`); a file that cannot be read is a 422
    (`document_unreadable`) naming the file and why."""
    if isinstance(body, DocumentFile):
        fields = body.fields
        refresh = fields.refresh_vector if refresh_vector is None else refresh_vector
        doc = await service.create_from_file(
            body.name, body.data, fields.title, fields.source, refresh
        )
        return _out(doc)
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
        File(description="Many .md/.txt/.pdf/.docx/.hwp/.hwpx files, or one .zip of them"),
    ],
) -> JobOut:
    """Bulk import as a background job: each file becomes a document (title = the file
    name), indexed as it is stored. 202 with the job; poll
    `GET /api/v1/jobs/{id}`: its result lists the files skipped and why (encrypted, damaged…)."""
    uploads = [(f.filename or "unnamed.txt", await f.read()) for f in files]
    job = await jobs.submit_import(uploads, created_by(principal))
    return accepted(job, response)
