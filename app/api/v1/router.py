"""All `/api/v1` routers."""

from fastapi import APIRouter

from app.api.v1 import alerts, auth, behavior, events, jobs, knowledge, llm_admin, rag, users

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(behavior.router)
api_router.include_router(events.router)
api_router.include_router(alerts.router)
api_router.include_router(alerts.debug_router)
api_router.include_router(knowledge.router)
api_router.include_router(rag.router)
api_router.include_router(llm_admin.router)
api_router.include_router(jobs.router)
