"""Fast JSON encoding for the hot paths (event records, pub/sub messages, JSON columns)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: Any) -> str:
    """Compact JSON text, non-ASCII kept as is (like `json.dumps(..., ensure_ascii=False,
    separators=(",", ":"))`), several times faster.

    orjson refuses some values the standard library takes (integers beyond 64 bits, float
    subclasses such as numpy's); those fall back to it, so nothing that encoded before fails.
    """
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
