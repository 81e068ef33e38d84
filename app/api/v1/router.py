"""All `/api/v1` routers."""

from fastapi import APIRouter

from app.api.v1 import (
    admin_stats,
    alerts,
    auth,
    behavior,
    events,
    jobs,
    knowledge,
    llm_admin,
    rag,
    silences,
    users,
)

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(users.admin_router)
api_router.include_router(behavior.router)
api_router.include_router(events.router)
api_router.include_router(alerts.router)
api_router.include_router(alerts.debug_router)
api_router.include_router(silences.router)
api_router.include_router(knowledge.router)
api_router.include_router(rag.router)
api_router.include_router(llm_admin.router)
api_router.include_router(admin_stats.router)
api_router.include_router(jobs.router)
