"""SQL for the LLM usage ledger (`llm_usage_daily`)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.usage import LLMUsageDay

# Columns a `scope|field` counter may add to (anything else is ignored by the ledger).
USAGE_FIELDS = frozenset(
    {
        "calls",
        "successes",
        "errors",
        "rate_limited",
        "quota_exhausted",
        "fallbacks",
        "served_as_fallback",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "cache_exact_hits",
        "cache_semantic_hits",
        "cache_misses",
        "local_answers",
    }
)


class UsageRepository:
    """Adds to and reads the per-day usage rows; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, day: date, provider: str, model: str, counts: dict[str, float]) -> None:
        """Add `counts` to the row (created at zero when missing) in one statement."""
        values = {name: counts.get(name, 0) for name in USAGE_FIELDS}
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(LLMUsageDay).values(day=day, provider=provider, model=model, **values)
        table = LLMUsageDay.__table__
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "provider", "model"],
            set_={name: table.c[name] + stmt.excluded[name] for name in counts},
        )
        await self.session.execute(stmt)

    async def since(self, first_day: date) -> list[LLMUsageDay]:
        stmt = (
            select(LLMUsageDay)
            .where(LLMUsageDay.day >= first_day)
            .order_by(LLMUsageDay.day, LLMUsageDay.provider, LLMUsageDay.model)
        )
        return list((await self.session.scalars(stmt)).all())
