"""LLM usage accounting: the shared totals (Redis), a per-day ledger in the database, Prometheus
counters, and the per-day report behind `GET /api/v1/admin/stats`.

`UsageRecorder` is the `LLMStatsStore` the LLM router and the RAG service already write to
(`scope|field` counters), so every count has one source. Ledger writes are buffered in memory
and flushed every few seconds (and before a report, and on shutdown), so an answer never waits
on an extra database round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from loguru import logger

from app.core.database import Database
from app.core.metrics import (
    LLM_COST,
    LLM_FALLBACKS,
    LLM_MONTHLY_BUDGET,
    LLM_TOKENS,
    RAG_LOCAL_ANSWERS,
)
from app.core.redis import RedisManager
from app.core.settings import LLMSettings
from app.core.tasks import cancel_task
from app.models.usage import LLMUsageDay
from app.repositories.llm import LLMStatsStore
from app.repositories.usage import USAGE_FIELDS, UsageRepository
from app.schemas.usage import CacheDayOut, ModelDayOut, UsageStatsOut

RAG_SCOPE = "rag"
# `rag|...` counters kept in the ledger (same names as its columns).
_RAG_FIELDS = frozenset(
    {"cache_exact_hits", "cache_semantic_hits", "cache_misses", "local_answers"}
)


def today() -> date:
    return datetime.now(UTC).date()


class UsageRecorder(LLMStatsStore):
    """Counts LLM usage once, into Redis totals, the daily ledger and Prometheus."""

    def __init__(
        self,
        redis: RedisManager,
        database: Database,
        settings: LLMSettings,
        flush_interval_secs: float = 5.0,
    ) -> None:
        super().__init__(redis)
        self.db = database
        self.settings = settings
        self.flush_interval = flush_interval_secs
        self._pending: dict[tuple[date, str, str], dict[str, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def _accumulate(self, key: tuple[date, str, str], counts: Mapping[str, float]) -> None:
        """Add `counts` to the buffered ledger row of (day, provider, model)."""
        row = self._pending[key]
        for name, value in counts.items():
            row[name] += value

    async def add(self, counts: dict[str, int]) -> None:
        await super().add(counts)
        day = today()
        for name, value in counts.items():
            if not value:
                continue
            scope, _, counter = name.partition("|")
            if scope == RAG_SCOPE:
                if counter not in _RAG_FIELDS:
                    continue
                self._accumulate((day, RAG_SCOPE, ""), {counter: value})
                if counter == "local_answers":
                    RAG_LOCAL_ANSWERS.inc(value)
                continue
            provider, _, model = scope.partition(":")
            if counter not in USAGE_FIELDS or not model:
                continue
            key = (day, provider, model)
            self._accumulate(key, {counter: value})
            if counter in ("tokens_in", "tokens_out"):
                LLM_TOKENS.labels(provider, model, counter.removeprefix("tokens_")).inc(value)
                price_in, price_out = self.settings.price(provider, model)
                cost = value * (price_in if counter == "tokens_in" else price_out) / 1_000_000
                if cost:
                    self._accumulate(key, {"cost_usd": cost})
                    LLM_COST.labels(provider, model).inc(cost)
            elif counter == "fallbacks":
                LLM_FALLBACKS.labels(provider, model).inc(value)

    async def flush(self) -> None:
        """Write buffered counts to the ledger (one upsert per day and model)."""
        async with self._lock:
            if not self._pending:
                return
            pending, self._pending = self._pending, defaultdict(lambda: defaultdict(float))
            try:
                async with self.db.sessions.begin() as session:
                    repo = UsageRepository(session)
                    for (day, provider, model), counts in pending.items():
                        await repo.add(day, provider, model, dict(counts))
            except Exception:
                # Keep the counts for the next flush rather than lose them.
                for key, counts in pending.items():
                    self._accumulate(key, counts)
                raise

    async def start(self) -> None:
        LLM_MONTHLY_BUDGET.set(self.settings.monthly_budget_usd)
        self._task = asyncio.create_task(self._loop(), name="llm-usage-flush")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        with contextlib.suppress(Exception):
            await self.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception as exc:  # the database may blip; the counts wait for the next try
                logger.warning("LLM usage flush failed: {}", type(exc).__name__)


class UsageService:
    """Reads the ledger into a per-day report."""

    def __init__(self, database: Database, recorder: UsageRecorder) -> None:
        self.db = database
        self.recorder = recorder

    async def report(self, days: int) -> UsageStatsOut:
        await self.recorder.flush()
        until = today()
        since = until - timedelta(days=days - 1)
        async with self.db.sessions() as session:
            rows = await UsageRepository(session).since(since)
        models = [_model_day(row) for row in rows if row.provider != RAG_SCOPE]
        return UsageStatsOut(
            days=days,
            since=since,
            until=until,
            models=models,
            cache=[_cache_day(row) for row in rows if row.provider == RAG_SCOPE],
            total_calls=sum(m.calls for m in models),
            total_cost_usd=round(sum(r.cost_usd for r in rows if r.provider != RAG_SCOPE), 6),
            monthly_budget_usd=self.recorder.settings.monthly_budget_usd,
        )


def _model_day(row: LLMUsageDay) -> ModelDayOut:
    day = ModelDayOut.model_validate(row, from_attributes=True)
    day.cost_usd = round(row.cost_usd, 6)
    return day


def _cache_day(row: LLMUsageDay) -> CacheDayOut:
    """The `rag` row of a day; hit rates are over all cache lookups."""
    lookups = row.cache_exact_hits + row.cache_semantic_hits + row.cache_misses
    return CacheDayOut(
        day=row.day,
        exact_hits=row.cache_exact_hits,
        semantic_hits=row.cache_semantic_hits,
        misses=row.cache_misses,
        exact_hit_rate=round(row.cache_exact_hits / lookups, 4) if lookups else 0.0,
        semantic_hit_rate=round(row.cache_semantic_hits / lookups, 4) if lookups else 0.0,
        local_answers=row.local_answers,
    )
