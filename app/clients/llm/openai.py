"""OpenAI Chat Completions through the `openai` SDK (its retries off: the router owns them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam

from app.clients.llm.base import ChatMessage, Completion, StreamChunk, each_within
from app.clients.llm.errors import (
    AuthFailed,
    BadRequest,
    LLMError,
    QuotaExhausted,
    TransientLLMError,
)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _error_code(exc: openai.APIStatusError) -> str:
    body: Any = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("code") or inner.get("type") or "")
    return str(getattr(exc, "code", "") or "")


def translate(exc: BaseException) -> LLMError:
    """Map an OpenAI SDK error to Sentinel's error types."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        text = f"OpenAI {code}: {exc.message}"[:500]
        if code == 429:
            if _error_code(exc) == "insufficient_quota":
                return QuotaExhausted(text, retry_after=_retry_after(exc))
            return TransientLLMError(text, status=429, retry_after=_retry_after(exc))
        if code in (401, 403, 404):
            return AuthFailed(text, status=code)
        if code == 408 or code >= 500:
            return TransientLLMError(text, status=code, retry_after=_retry_after(exc))
        return BadRequest(text, status=code)
    if isinstance(exc, openai.APITimeoutError | TimeoutError | httpx.TimeoutException):
        return TransientLLMError("OpenAI timed out")
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError | OSError):
        return TransientLLMError(f"OpenAI connection failed: {type(exc).__name__}")
    return TransientLLMError(f"OpenAI call failed: {type(exc).__name__}")


def _message(m: ChatMessage) -> ChatCompletionMessageParam:
    # One literal per role, so each dict matches its TypedDict in the SDK's union.
    if m.role == "system":
        return {"role": "system", "content": m.content}
    if m.role == "assistant":
        return {"role": "assistant", "content": m.content}
    return {"role": "user", "content": m.content}


class OpenAIClient:
    """OpenAI (or any server speaking its Chat Completions API)."""

    provider = "openai"

    def __init__(self, api_key: str, base_url: str = "", timeout_secs: float = 30.0) -> None:
        self.timeout_secs = timeout_secs
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or None,
            timeout=openai.Timeout(timeout_secs, connect=min(timeout_secs, 5.0)),
            max_retries=0,
        )

    @staticmethod
    def _messages(messages: list[ChatMessage]) -> list[ChatCompletionMessageParam]:
        return [_message(m) for m in messages]

    async def complete(self, model: str, messages: list[ChatMessage]) -> Completion:
        try:
            async with asyncio.timeout(self.timeout_secs + 1):
                response = await self._client.chat.completions.create(
                    model=model, messages=self._messages(messages), temperature=0.2
                )
        except Exception as exc:
            raise translate(exc) from exc
        usage = response.usage
        text = response.choices[0].message.content if response.choices else ""
        return Completion(
            text=text or "",
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
        )

    async def stream(self, model: str, messages: list[ChatMessage]) -> AsyncIterator[StreamChunk]:
        try:
            async with asyncio.timeout(self.timeout_secs + 1):
                response = await self._client.chat.completions.create(
                    model=model,
                    messages=self._messages(messages),
                    temperature=0.2,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            async for chunk in each_within(response.__aiter__(), self.timeout_secs):
                text = ""
                if chunk.choices and chunk.choices[0].delta:
                    text = chunk.choices[0].delta.content or ""
                usage = chunk.usage
                yield StreamChunk(
                    text=text,
                    tokens_in=usage.prompt_tokens if usage else None,
                    tokens_out=usage.completion_tokens if usage else None,
                )
        except GeneratorExit:
            raise
        except Exception as exc:
            raise translate(exc) from exc

    async def aclose(self) -> None:
        await self._client.close()
