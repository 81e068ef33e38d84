"""Provider-neutral messages, results and the client interface the router drives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar


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


_T = TypeVar("_T")


async def each_within(iterator: AsyncIterator[_T], timeout_secs: float) -> AsyncIterator[_T]:
    """The iterator's items, each with its own deadline, so a stalled stream raises
    `TimeoutError` instead of hanging the caller."""
    while True:
        async with asyncio.timeout(timeout_secs):
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                return
        yield item
