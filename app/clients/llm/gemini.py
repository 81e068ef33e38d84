"""Gemini through the `google-genai` SDK (REST `/v1beta/models/{model}:generateContent`).

The SDK's own retries are off (one attempt): Sentinel's router owns retries and cooldowns.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from app.clients.llm.base import ChatMessage, Completion, StreamChunk, each_within
from app.clients.llm.errors import (
    AuthFailed,
    BadRequest,
    LLMError,
    QuotaExhausted,
    TransientLLMError,
)

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_SHORT_WINDOW = re.compile(r"per(second|minute)", re.IGNORECASE)


def parse_duration(value: Any) -> float | None:
    """`google.protobuf.Duration` JSON (`"37s"`, `"1.5s"`) → seconds."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    return None


def _error_details(body: Any) -> tuple[list[dict[str, Any]], str]:
    error = body.get("error", body) if isinstance(body, dict) else {}
    details = error.get("details") if isinstance(error, dict) else None
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    return [d for d in (details or []) if isinstance(d, dict)], message


def translate_api_error(exc: genai_errors.APIError) -> LLMError:
    """Map a Gemini error response to Sentinel's error types (reads the google.rpc details)."""
    details, message = _error_details(exc.details)
    code = int(exc.code or 0)
    status = exc.status or ""
    retry_after = None
    quota_ids: list[str] = []
    reasons: list[str] = []
    for item in details:
        kind = item.get("@type")
        if kind == _RETRY_INFO:
            retry_after = parse_duration(item.get("retryDelay"))
        elif kind == _QUOTA_FAILURE:
            quota_ids += [str(v.get("quotaId", "")) for v in item.get("violations", [])]
        elif kind == _ERROR_INFO:
            reasons.append(str(item.get("reason", "")))
    text = f"Gemini {code} {status}: {message or 'no message'}"[:500]
    if code == 429:
        # A per-minute (or per-second) quota refills soon: that is a transient rate limit.
        if quota_ids and all(_SHORT_WINDOW.search(q) for q in quota_ids):
            return TransientLLMError(text, status=429, retry_after=retry_after)
        return QuotaExhausted(
            text, retry_after=retry_after, quota_id=quota_ids[0] if quota_ids else None
        )
    if code in (401, 403) or "API_KEY_INVALID" in reasons:
        return AuthFailed(text, status=code)
    if code == 404:  # unknown model name: a configuration problem, like a bad key
        return AuthFailed(text, status=code)
    if code == 408 or code >= 500:
        return TransientLLMError(text, status=code, retry_after=retry_after)
    return BadRequest(text, status=code)


def translate(exc: BaseException) -> LLMError:
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, genai_errors.APIError):
        return translate_api_error(exc)
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return TransientLLMError("Gemini timed out")
    if isinstance(exc, httpx.TransportError | OSError):
        return TransientLLMError(f"Gemini connection failed: {type(exc).__name__}")
    return TransientLLMError(f"Gemini call failed: {type(exc).__name__}")


class GeminiClient:
    """Gemini models through one `genai.Client`."""

    provider = "gemini"

    def __init__(self, api_key: str, base_url: str = "", timeout_secs: float = 30.0) -> None:
        self.timeout_secs = timeout_secs
        options = types.HttpOptions(
            base_url=base_url.rstrip("/") + "/" if base_url else None,
            api_version="v1beta",
            timeout=int(timeout_secs * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    @staticmethod
    def _request(messages: list[ChatMessage]) -> tuple[list[types.Content], Any]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        contents = [
            types.Content(
                role="model" if m.role == "assistant" else "user",
                parts=[types.Part(text=m.content)],
            )
            for m in messages
            if m.role != "system"
        ]
        config = types.GenerateContentConfig(system_instruction=system or None, temperature=0.2)
        return contents, config

    async def complete(self, model: str, messages: list[ChatMessage]) -> Completion:
        contents, config = self._request(messages)
        try:
            async with asyncio.timeout(self.timeout_secs + 1):
                response = await self._client.aio.models.generate_content(
                    model=model, contents=contents, config=config
                )
        except Exception as exc:
            raise translate(exc) from exc
        usage = response.usage_metadata
        return Completion(
            text=response.text or "",
            tokens_in=(usage.prompt_token_count or 0) if usage else 0,
            tokens_out=(usage.candidates_token_count or 0) if usage else 0,
        )

    async def stream(self, model: str, messages: list[ChatMessage]) -> AsyncIterator[StreamChunk]:
        contents, config = self._request(messages)
        try:
            async with asyncio.timeout(self.timeout_secs + 1):
                iterator = await self._client.aio.models.generate_content_stream(
                    model=model, contents=contents, config=config
                )
            async for chunk in each_within(iterator, self.timeout_secs):
                usage = chunk.usage_metadata
                yield StreamChunk(
                    text=chunk.text or "",
                    tokens_in=usage.prompt_token_count if usage else None,
                    tokens_out=usage.candidates_token_count if usage else None,
                )
        except GeneratorExit:
            raise
        except Exception as exc:
            raise translate(exc) from exc

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # best effort on shutdown
            await self._client.aio.aclose()
