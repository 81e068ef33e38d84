"""Provider-neutral messages, results and the client interface the router drives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One prompt message."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer with token usage (0 when the provider did not say)."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A text delta; the last chunk of a stream may carry only usage."""

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None


class LLMClient(Protocol):
    """One provider. Raises only `app.clients.llm.errors` types; never retries by itself."""

    provider: str

    async def complete(self, model: str, messages: list[ChatMessage]) -> Completion: ...

    def stream(self, model: str, messages: list[ChatMessage]) -> AsyncIterator[StreamChunk]: ...

    async def aclose(self) -> None: ...
