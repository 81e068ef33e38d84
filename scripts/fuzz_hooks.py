"""Schemathesis hooks for `scripts/fuzz_api.py`: edge values the default generators rarely draw.

Loaded through `SCHEMATHESIS_HOOKS=scripts.fuzz_hooks`. Every `date-time` string is drawn
from instants at the edges of what Python, SQLite and PostgreSQL can hold (with extreme UTC
offsets), and query/body values are now and then swapped for huge integers, NaN-like
strings, control characters or a value of the wrong JSON type.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

EXTREME_DATETIMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-02T00:00:00Z",
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59.999999Z",
    "1970-01-01T00:00:00+00:00",
    "2038-01-19T03:14:08Z",
    "2026-11-25T10:00:00+23:59",
]
EDGE_VALUES: list[Any] = [
    2**63,
    -(2**63) - 1,
    10**30,
    -1,
    1e308,
    "NaN",
    "Infinity",
    "\u0000",
    "a\u0000b",
    "\u001b[31m\u0007",
    "\ud7ff\ufffe",
    [],
    {},
    None,
    True,
    "9999-12-31T23:59:59-12:00",
]

schemathesis.openapi.format(
    "date-time",
    st.sampled_from(EXTREME_DATETIMES) | st.datetimes().map(lambda d: d.isoformat() + "Z"),
)


def _poison(draw_from: st.DrawFn, value: dict[str, Any] | None) -> dict[str, Any] | None:
    if not value:
        return value
    key = draw_from(st.sampled_from(sorted(value)))
    return {**value, key: draw_from(st.sampled_from(EDGE_VALUES))}


@st.composite
def _maybe_poisoned(draw: st.DrawFn, value: Any) -> Any:
    if isinstance(value, dict) and draw(st.booleans()):
        return _poison(draw, value)
    return value


@schemathesis.hook
def flatmap_query(ctx: schemathesis.HookContext, query: Any) -> st.SearchStrategy:
    return _maybe_poisoned(query)


@schemathesis.hook
def flatmap_body(ctx: schemathesis.HookContext, body: Any) -> st.SearchStrategy:
    return _maybe_poisoned(body)
