"""LLM provider clients (Gemini, OpenAI) behind one small interface and one set of error types."""

from app.clients.llm.base import ChatMessage, Completion, LLMClient, StreamChunk
from app.clients.llm.errors import (
    AuthFailed,
    BadRequest,
    LLMError,
    QuotaExhausted,
    TransientLLMError,
)

__all__ = [
    "AuthFailed",
    "BadRequest",
    "ChatMessage",
    "Completion",
    "LLMClient",
    "LLMError",
    "QuotaExhausted",
    "StreamChunk",
    "TransientLLMError",
]
