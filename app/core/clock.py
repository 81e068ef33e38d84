"""The one clock: aware UTC now (models default their timestamps with it, services stamp with it)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)
