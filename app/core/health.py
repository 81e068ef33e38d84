"""The shape every `/health` component reports: a status and the details that component knows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ComponentHealth(BaseModel):
    """One `/health` component. Subclasses add their details; a report carries only the fields
    its producer set (`as_json`), so a down component is just `status` and `error`."""

    status: str
    error: str | None = None
    latency_ms: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The component's entry in the `/health` body."""
        return self.model_dump(mode="json", exclude_unset=True)


def down(error: str) -> ComponentHealth:
    """A component that did not answer, with why (an exception's type name, never its text)."""
    return ComponentHealth(status="down", error=error)
