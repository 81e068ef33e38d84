"""Request and response bodies for knowledge documents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic_core import PydanticCustomError

from app.schemas.safety import BoundedJson, DocumentText, SafeLine


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be blank")
    return v


class DocumentCreate(BaseModel):
    """A new knowledge document; `refresh_vector: false` defers indexing until a reindex."""

    title: SafeLine = Field(min_length=1, max_length=300, examples=["Fall alert procedure"])
    content: DocumentText = Field(
        min_length=1,
        max_length=1_000_000,
        description="Markdown or plain text. Page breaks (form feed), vertical tabs and line or "
        "paragraph separators become line breaks, NBSP and other odd spaces plain spaces, CRLF "
        "LF; NUL, other control characters, bidi controls and zero-width characters are refused.",
        examples=["When a fall alert fires, call the resident within 2 minutes."],
    )
    source: SafeLine | None = Field(default=None, max_length=500, examples=["ops-manual.pdf"])
    metadata: BoundedJson = Field(default_factory=dict)
    refresh_vector: StrictBool = True

    _title = field_validator("title", "content")(_not_blank)


class DocumentFileFields(BaseModel):
    """The form fields sent with a document file (`multipart/form-data` on `POST /docs`)."""

    title: SafeLine | None = Field(default=None, min_length=1, max_length=300)
    source: SafeLine | None = Field(default=None, max_length=500)
    refresh_vector: bool = True


class DocumentUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are."""

    title: SafeLine | None = Field(default=None, min_length=1, max_length=300)
    content: DocumentText | None = Field(default=None, min_length=1, max_length=1_000_000)
    source: SafeLine | None = Field(default=None, max_length=500)
    metadata: BoundedJson | None = None
    refresh_vector: StrictBool = True

    @field_validator("title", "content", "metadata", mode="before")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        # Runs only for fields the client sent: an explicit null cannot clear a required field.
        if v is None:
            raise PydanticCustomError(
                "not_null", "must not be null: send a value, or leave the field out to keep it"
            )
        return v

    @field_validator("title", "content")
    @classmethod
    def _blank(cls, v: str | None) -> str | None:
        return None if v is None else _not_blank(v)


class DocumentOut(BaseModel):
    """A knowledge document as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    content: str
    source: str | None
    metadata: dict[str, Any] = Field(validation_alias="meta")
    chunk_count: int
    indexed: bool
    indexed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DocumentPage(BaseModel):
    """A page of documents, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[DocumentOut]
    next_cursor: str | None
    total: int = Field(description="documents in all")
