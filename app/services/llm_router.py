"""The LLM router: primary model → fallback models → OpenAI models, with retries, shared quota
cooldowns and disabled models.

Rules (each model in chain order):
- cooling down or disabled → skipped without a call;
- transient error (5xx, timeout, connection, short rate limit) → retried with backoff
  base·2^(n-1) up to `LLM_MAX_ATTEMPTS` attempts; a provider retry delay is honoured when within
  `LLM_BACKOFF_MAX_SECS`, and a longer one cools the model down for that delay instead;
- quota exhausted → cooled down for max(`RAG_QUOTA_COOLDOWN_SECS`, provider retry delay), next model;
- auth error (401/403, unknown model) → disabled until restart or a config change, next model;
- bad request → surfaced at once.
When every model fails, `AllModelsUnavailable` says what happened so the caller can answer locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from pydantic import Field

from app.clients.llm.base import ChatMessage, LLMClient, StreamChunk
from app.clients.llm.errors import (
    AuthFailed,
    BadRequest,
    LLMError,
    QuotaExhausted,
    TransientLLMError,
)
from app.clients.llm.registry import ProviderSpec, providers
from app.core.health import ComponentHealth
from app.core.metrics import LLM_CALLS, LLM_COOLDOWN
from app.core.settings import LLMSettings
from app.repositories.llm import Cooldown, CooldownStore, LLMStatsStore
from app.schemas.rag import CooldownReason


@dataclass(frozen=True, slots=True)
class ModelRef:
    """One model of one provider."""

    provider: str
    model: str

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass(slots=True)
class Attempt:
    """One step of the chain: a call (with its outcome) or a skip."""

    provider: str
    model: str
    outcome: str
    ms: float = 0.0


class ChainStatus(ComponentHealth):
    """`/health` component `llm`: the configured chain, which models can answer, which cannot."""

    chain: list[str]
    available: list[str]
    cooling_down: dict[str, float] = Field(description="model key -> seconds of cooldown left")
    disabled: dict[str, str] = Field(description="model key -> why it is disabled")


@dataclass(slots=True)
class Routed:
    """Where an answer came from."""

    provider: str
    model: str
    attempts: list[Attempt]
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(slots=True)
class RoutedCompletion(Routed):
    text: str = ""


class AllModelsUnavailable(Exception):
    """No model could answer: every one failed, is cooling down, is disabled, or none is set."""

    def __init__(
        self,
        attempts: list[Attempt],
        cooling: dict[str, float],
        disabled: dict[str, str],
        configured: bool,
    ) -> None:
        super().__init__("no LLM could answer")
        self.attempts = attempts
        self.cooling = cooling
        self.disabled = disabled
        self.configured = configured


class StreamInterrupted(Exception):
    """The stream failed after its first token; `partial` is what was delivered."""

    def __init__(self, partial: str, routed: Routed, cause: LLMError) -> None:
        super().__init__(str(cause))
        self.partial = partial
        self.routed = routed
        self.cause = cause


@dataclass(slots=True)
class _Try:
    attempts: list[Attempt] = field(default_factory=list)
    fallbacks: int = 0


_SKIP = object()


def build_chain(
    settings: LLMSettings, registry: Sequence[ProviderSpec] | None = None
) -> list[ModelRef]:
    """Every keyed provider's models in registry order (Gemini primary, its fallbacks, then
    OpenAI); duplicates skipped, providers without a key left out."""
    unique: list[ModelRef] = []
    for spec in providers(registry):
        if not spec.enabled(settings):
            continue
        for name in spec.models(settings):
            ref = ModelRef(spec.name, name.strip())
            if ref.model and ref not in unique:
                unique.append(ref)
    return unique


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """One model's counters (shared by every process) and its state in this router."""

    ref: ModelRef
    calls: int = 0
    successes: int = 0
    errors: int = 0  # every failed call: the three kinds below together
    quota_exhausted: int = 0
    rate_limited: int = 0  # short rate limits (per minute/second), retried or waited out
    other_errors: int = 0  # 5xx, timeouts, connection, auth and bad requests
    fallbacks: int = 0
    served_as_fallback: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cooldown: Cooldown | None = None
    disabled: str | None = None

    @property
    def cooldown_remaining_secs(self) -> float:
        return round(self.cooldown.remaining(time.time()), 1) if self.cooldown else 0.0

    @property
    def provider(self) -> str:
        return self.ref.provider

    @property
    def model(self) -> str:
        return self.ref.model


# Stored counter name -> ModelUsage field. `short_rate_limits` is not called `rate_limited`
# because that stored counter used to include quota 429s.
_USAGE_COUNTERS = {
    "calls": "calls",
    "successes": "successes",
    "errors": "errors",
    "quota_exhausted": "quota_exhausted",
    "short_rate_limits": "rate_limited",
    "other_errors": "other_errors",
    "fallbacks": "fallbacks",
    "served_as_fallback": "served_as_fallback",
    "tokens_in": "tokens_in",
    "tokens_out": "tokens_out",
}


def failure_kind(exc: LLMError) -> str:
    """The stats counter a failed call adds to."""
    if isinstance(exc, QuotaExhausted):
        return "quota_exhausted"
    if isinstance(exc, TransientLLMError) and exc.status == 429:
        return "short_rate_limits"
    return "other_errors"


class LLMRouter:
    """Walks the chain for one request; state (cooldowns, stats) is shared through Redis."""

    def __init__(
        self,
        settings: LLMSettings,
        clients: Mapping[str, LLMClient],
        cooldowns: CooldownStore,
        stats: LLMStatsStore,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        registry: Sequence[ProviderSpec] | None = None,
    ) -> None:
        self.settings = settings
        self.clients = dict(clients)
        self.cooldowns = cooldowns
        self.stats = stats
        self.sleep = sleep
        self.chain = [
            ref for ref in build_chain(settings, registry) if ref.provider in self.clients
        ]
        # Disabled until restart: a new key means a new process (settings are read at start).
        self.disabled: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self.chain:
            logger.info("LLM chain: {}", " → ".join(r.key for r in self.chain))
        else:
            logger.info("No LLM provider key set: answers are extracted from the knowledge base")

    async def stop(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    # -- state -----------------------------------------------------------------------

    def backoff(self, attempt_no: int, retry_after: float | None) -> float | None:
        """Delay before the next attempt; None when the provider asks for longer than the cap."""
        if retry_after is not None:
            return retry_after if retry_after <= self.settings.backoff_max_secs else None
        return min(
            self.settings.backoff_base_secs * 2 ** (attempt_no - 1), self.settings.backoff_max_secs
        )

    async def _record(self, ref: ModelRef, outcome: str, **extra: int) -> None:
        LLM_CALLS.labels(ref.provider, ref.model, outcome).inc()
        counts = {f"{ref.key}|calls": 1, **{f"{ref.key}|{k}": v for k, v in extra.items()}}
        if outcome == "ok":
            counts[f"{ref.key}|successes"] = 1
        else:
            counts[f"{ref.key}|errors"] = 1
        if outcome == QuotaExhausted.outcome:
            counts[f"{ref.key}|quota_exhausted"] = 1
        await self.stats.add(counts)

    async def _record_failure(self, ref: ModelRef, exc: LLMError) -> None:
        await self._record(ref, exc.outcome, **{failure_kind(exc): 1})

    async def _cool(
        self, ref: ModelRef, seconds: float, reason: CooldownReason, detail: str | None
    ) -> None:
        await self.cooldowns.cool_down(ref.key, seconds, reason, detail)
        LLM_COOLDOWN.labels(ref.provider, ref.model).set(seconds)
        logger.warning("{} cooling down for {:.0f}s ({}: {})", ref.key, seconds, reason, detail)

    async def _handle_failure(
        self, ref: ModelRef, exc: LLMError, attempt_no: int, ms: float, state: _Try
    ) -> float | None:
        """Record a failure; return the delay before retrying the same model, or None to move on."""
        await self._record_failure(ref, exc)
        state.attempts.append(Attempt(ref.provider, ref.model, exc.outcome, ms))
        if isinstance(exc, BadRequest):
            raise exc
        if isinstance(exc, QuotaExhausted):
            seconds = max(float(self.settings.quota_cooldown_secs), exc.retry_after or 0.0)
            await self._cool(ref, seconds, CooldownReason.quota_exhausted, exc.quota_id)
            return None
        if isinstance(exc, AuthFailed):
            self.disabled[ref.key] = exc.message
            logger.error("{} disabled until restart: {}", ref.key, exc.message)
            return None
        assert isinstance(exc, TransientLLMError)
        if attempt_no >= self.settings.max_attempts:
            return None
        delay = self.backoff(attempt_no, exc.retry_after)
        if delay is None and exc.retry_after:
            await self._cool(
                ref, exc.retry_after, CooldownReason.rate_limited, "provider asked to wait"
            )
        return delay

    async def _skip_reason(self, ref: ModelRef) -> str | None:
        if ref.key in self.disabled:
            return "skipped_disabled"
        if await self.cooldowns.remaining(ref.key) > 0:
            return "skipped_cooling"
        return None

    async def _run(
        self, call: Callable[[ModelRef], Awaitable[Any]], state: _Try
    ) -> tuple[ModelRef, Any]:
        for index, ref in enumerate(self.chain):
            result = await self._try_model(ref, call, state)
            if result is not _SKIP:
                if index and state.fallbacks:
                    await self.stats.add({f"{ref.key}|served_as_fallback": 1})
                return ref, result
        raise await self._unavailable(state)

    async def _try_model(
        self, ref: ModelRef, call: Callable[[ModelRef], Awaitable[Any]], state: _Try
    ) -> Any:
        for attempt_no in range(1, self.settings.max_attempts + 1):
            skip = await self._skip_reason(
                ref
            )  # checked before every call: zero calls while cooling
            if skip:
                state.attempts.append(Attempt(ref.provider, ref.model, skip))
                return _SKIP
            started = time.perf_counter()
            try:
                return await call(ref)
            except LLMError as exc:
                ms = round((time.perf_counter() - started) * 1000, 1)
                delay = await self._handle_failure(ref, exc, attempt_no, ms, state)
                if delay is None:
                    break
                await self.sleep(delay)
        state.fallbacks += 1
        await self.stats.add({f"{ref.key}|fallbacks": 1})
        return _SKIP

    async def _unavailable(self, state: _Try) -> AllModelsUnavailable:
        cooling = {
            k: round(v, 1)
            for k, v in (await self.cooldowns.all_remaining(r.key for r in self.chain)).items()
            if v > 0
        }
        return AllModelsUnavailable(state.attempts, cooling, dict(self.disabled), bool(self.chain))

    # -- calls -----------------------------------------------------------------------

    async def complete(self, messages: list[ChatMessage]) -> RoutedCompletion:
        state = _Try()

        async def call(ref: ModelRef) -> Any:
            started = time.perf_counter()
            result = await self.clients[ref.provider].complete(ref.model, messages)
            ms = round((time.perf_counter() - started) * 1000, 1)
            state.attempts.append(Attempt(ref.provider, ref.model, "ok", ms))
            await self._record(ref, "ok", tokens_in=result.tokens_in, tokens_out=result.tokens_out)
            return result

        ref, result = await self._run(call, state)
        return RoutedCompletion(
            provider=ref.provider,
            model=ref.model,
            attempts=state.attempts,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            text=result.text,
        )

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[tuple[str, Any]]:
        """Yields ("token", text) …, then ("done", Routed). Failing before the first token falls
        back to the next model; after it, raises `StreamInterrupted` with the partial text."""
        state = _Try()

        async def open_stream(ref: ModelRef) -> tuple[AsyncIterator[StreamChunk], StreamChunk]:
            started = time.perf_counter()
            iterator = aiter(self.clients[ref.provider].stream(ref.model, messages))
            try:
                # Wait for the first chunk with text: only then is the stream committed.
                while True:
                    first = await anext(iterator)
                    if first.text:
                        break
            except StopAsyncIteration:
                first = StreamChunk(text="")
            except BaseException:
                await _close(iterator)
                raise
            ms = round((time.perf_counter() - started) * 1000, 1)
            state.attempts.append(Attempt(ref.provider, ref.model, "ok", ms))
            return iterator, first

        ref, (iterator, first) = await self._run(open_stream, state)
        routed = Routed(ref.provider, ref.model, state.attempts)
        parts: list[str] = []

        def account(chunk: StreamChunk) -> None:
            if chunk.tokens_in is not None:
                routed.tokens_in = chunk.tokens_in
            if chunk.tokens_out is not None:
                routed.tokens_out = chunk.tokens_out

        try:
            account(first)
            if first.text:
                parts.append(first.text)
                yield "token", first.text
            while True:
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                except LLMError as exc:
                    await self._record_failure(ref, exc)
                    raise StreamInterrupted("".join(parts), routed, exc) from exc
                account(chunk)
                if chunk.text:
                    parts.append(chunk.text)
                    yield "token", chunk.text
        finally:
            await _close(iterator)
        await self._record(ref, "ok", tokens_in=routed.tokens_in, tokens_out=routed.tokens_out)
        yield "done", routed

    # -- reporting -------------------------------------------------------------------

    async def usage(self) -> list[ModelUsage]:
        """Counters and state per model: the chain, then models only other processes (or an
        earlier configuration) have counted. The counter key format stays in this class."""
        counters = await self.stats.snapshot()
        refs = {ref.key: ref for ref in self.chain}
        per_model: dict[str, dict[str, int]] = {}
        for name, value in counters.items():
            scope, _, counter = name.partition("|")
            provider, sep, model = scope.partition(":")
            if not sep or counter not in _USAGE_COUNTERS:
                continue  # not a model counter (e.g. `rag|cache_misses`)
            refs.setdefault(scope, ModelRef(provider, model))
            per_model.setdefault(scope, {})[_USAGE_COUNTERS[counter]] = value
        cooldowns = await self.cooldowns.all(refs)
        return [
            ModelUsage(
                ref=ref,
                **per_model.get(key, {}),
                cooldown=cooldowns.get(key),
                disabled=self.disabled.get(key),
            )
            for key, ref in refs.items()
        ]

    async def status(self) -> ChainStatus:
        """`/health` component `llm`: configured chain, cooling and disabled models."""
        cooling = await self.cooldowns.all_remaining(r.key for r in self.chain)
        for ref in self.chain:
            LLM_COOLDOWN.labels(ref.provider, ref.model).set(round(cooling.get(ref.key, 0.0), 1))
        usable = [
            r.key for r in self.chain if r.key not in self.disabled and cooling.get(r.key, 0) <= 0
        ]
        if not self.chain:
            status = "disabled"  # no keys: local answers only, by configuration
        elif usable:
            status = "healthy"
        else:
            status = "degraded"
        return ChainStatus(
            status=status,
            chain=[r.key for r in self.chain],
            available=usable,
            cooling_down={k: round(v, 1) for k, v in cooling.items() if v > 0},
            disabled=dict(self.disabled),
        )


async def _close(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):  # closing a failed stream
            await close()
