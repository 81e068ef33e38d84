"""All `/api/v1` routers."""

from fastapi import APIRouter

from app.api.v1 import auth, knowledge, llm_admin, rag, users

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(knowledge.router)
api_router.include_router(rag.router)
api_router.include_router(llm_admin.router)
