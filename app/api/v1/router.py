"""All `/api/v1` routers, in matching order."""

from fastapi import APIRouter

from app.api.v1 import (
    admin_stats,
    agents,
    alerts,
    auth,
    behavior,
    events,
    incidents,
    jobs,
    knowledge,
    learning,
    llm_admin,
    rag,
    schedules,
    silences,
    users,
)

# Each carries the full `/api/v1/...` prefix. Routes are matched in order, each miss costing a
# few microseconds: the agent's hot paths (events, analyze) come first.
API_ROUTERS: tuple[APIRouter, ...] = (
    events.router,
    behavior.router,
    auth.router,
    users.router,
    users.admin_router,
    schedules.router,  # before alerts.router: /alerts/schedules is not an alert id
    alerts.router,
    alerts.debug_router,
    silences.router,
    incidents.router,
    knowledge.router,
    rag.router,
    llm_admin.router,
    admin_stats.router,
    agents.router,
    jobs.router,
    learning.router,
)
