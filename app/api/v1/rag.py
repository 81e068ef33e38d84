"""The knowledge assistant: ask (JSON or Server-Sent Events), conversations and ratings."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from loguru import logger
from sse_starlette.sse import EventSourceResponse

from app.api.authz import SIGNED_IN, Caller, GuardedRoute, require
from app.api.deps import get_feedback_service, get_rag_service
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.rag import (
    AskRequest,
    AskResponse,
    ConversationOut,
    ConversationSummary,
    FeedbackOut,
    FeedbackRequest,
)
from app.services.answer_feedback import FeedbackService
from app.services.rag import RagService

router = APIRouter(
    route_class=GuardedRoute,
    prefix=f"{API_PREFIX}/rag",
    tags=["rag"],
    responses=COMMON_ERROR_RESPONSES,
)


Rag = Annotated[RagService, Depends(get_rag_service)]
Feedback = Annotated[FeedbackService, Depends(get_feedback_service)]
# Any signed-in person; conversations are scoped to their owner by the service.
Asker = Annotated[Caller, Depends(require(*SIGNED_IN))]


@router.post("/ask", response_model=AskResponse)
async def ask(body: AskRequest, service: Rag, caller: Asker) -> AskResponse:
    """Answer from the knowledge base through the model chain; when no model can answer, a local
    (extracted) answer with `degraded: true` and a `notice` saying why and what to do."""
    result = await service.ask(body.question, body.top_k, body.conversation_id, caller)
    return AskResponse.model_validate(result, from_attributes=True)


@router.post(
    "/ask/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
)
async def ask_stream(body: AskRequest, service: Rag, caller: Asker) -> EventSourceResponse:
    """Server-Sent Events: `meta` (sources), `token` (text deltas), then `done` (provider, model,
    usage) or `error` (with the partial text)."""
    prepared = await service.prepare(body.question, body.top_k, body.conversation_id, caller)

    async def events() -> AsyncIterator[dict[str, Any]]:
        try:
            async for event in service.stream(prepared):
                yield {"event": event.name, "data": event.json_data()}
        except Exception as exc:  # the stream must end with an event, never hang or cut off
            logger.opt(exception=exc).error("ask stream failed")
            yield {
                "event": "error",
                "data": json.dumps(
                    {"detail": "Internal error while answering", "code": "internal_error"}
                ),
            }

    return EventSourceResponse(events(), ping=15)


@router.get("/conversations", response_model=list[ConversationSummary])
async def list_conversations(
    service: Rag, caller: Asker, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[ConversationSummary]:
    """Your conversations, newest first."""
    return [
        ConversationSummary.model_validate(c) for c in await service.conversations(caller, limit)
    ]


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
async def get_conversation(
    conversation_id: uuid.UUID, service: Rag, caller: Asker
) -> ConversationOut:
    """A conversation's questions and answers, oldest first (your own; admins may read any)."""
    conversation = await service.conversation(conversation_id, caller)
    return ConversationOut.model_validate(conversation, from_attributes=True)


@router.post(
    "/conversations/{conversation_id}/turns/{turn_id}/feedback", response_model=FeedbackOut
)
async def rate_answer(
    conversation_id: uuid.UUID,
    turn_id: uuid.UUID,
    body: FeedbackRequest,
    service: Feedback,
    caller: Asker,
) -> FeedbackOut:
    """👍/👎 on one of your answers, with an optional comment and the document that should have
    answered; rating again replaces the rating. Only the conversation's owner may rate."""
    feedback = await service.rate(
        conversation_id, turn_id, body.rating, body.comment, body.doc_id, caller
    )
    return FeedbackOut.model_validate(feedback)
