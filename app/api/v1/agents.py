"""Agent credentials (one token per video agent, bound to its sources) and registered sources."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from app.api.authz import ADMINS, Caller, GuardedRoute, require
from app.api.deps import get_agent_service, get_source_registry
from app.api.v1.alerts import who
from app.api.v1.prefix import API_PREFIX
from app.core.errors import COMMON_ERROR_RESPONSES
from app.schemas.agents import (
    AgentCreated,
    AgentIn,
    AgentList,
    RegisteredSourceIn,
    RegisteredSourceOut,
    SourceId,
)
from app.services.agents import AgentService, SourceRegistry

router = APIRouter(
    route_class=GuardedRoute,
    prefix=f"{API_PREFIX}/admin",
    tags=["admin"],
    responses=COMMON_ERROR_RESPONSES,
)


Agents = Annotated[AgentService, Depends(get_agent_service)]
Registry = Annotated[SourceRegistry, Depends(get_source_registry)]
Admin = Annotated[Caller, Depends(require(*ADMINS))]
ADMIN_ONLY = [Depends(require(*ADMINS))]
# Pre-filled in Swagger with the events example's source, so trying the examples in order
# registers (and unregisters) the camera they posted for.
SourcePath = Annotated[
    SourceId,
    Path(
        description="The source id, as its agent sends it",
        openapi_examples={
            "lobby": {"summary": "The events example's camera", "value": "cam-lobby-1"}
        },
    ),
]


@router.post("/agents", response_model=AgentCreated, status_code=status.HTTP_201_CREATED)
async def create_agent(
    body: AgentIn, principal: Admin, agents: Agents, response: Response
) -> AgentCreated:
    """A credential for one agent, bound to its sources; the token is shown only here."""
    created = await agents.create(body.name, body.source_patterns, who(principal))
    response.headers["Cache-Control"] = "no-store"
    return created


@router.get("/agents", response_model=AgentList, dependencies=ADMIN_ONLY)
async def list_agents(agents: Agents) -> AgentList:
    """Agent credentials with their source patterns and last use (never their tokens)."""
    return AgentList(items=await agents.list())


@router.post("/agents/{agent_id}/rotate", response_model=AgentCreated, dependencies=ADMIN_ONLY)
async def rotate_agent(agent_id: uuid.UUID, agents: Agents, response: Response) -> AgentCreated:
    """A new token for the agent; the old one stops working."""
    rotated = await agents.rotate(agent_id)
    response.headers["Cache-Control"] = "no-store"
    return rotated


@router.delete(
    "/agents/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=ADMIN_ONLY,
)
async def delete_agent(agent_id: uuid.UUID, agents: Agents) -> Response:
    """Delete the agent credential; its token stops working."""
    await agents.delete(agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/sources/{source_id}", response_model=RegisteredSourceOut)
async def register_source(
    source_id: SourcePath, body: RegisteredSourceIn, principal: Admin, registry: Registry
) -> RegisteredSourceOut:
    """Register a source (watched for going offline when `watch_offline`)."""
    return await registry.register(source_id, body.watch_offline, body.name, who(principal))


@router.delete(
    "/sources/{source_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=ADMIN_ONLY,
)
async def unregister_source(source_id: SourcePath, registry: Registry) -> Response:
    """Unregister a source; it stays listed, watched only if an agent's patterns cover it."""
    await registry.unregister(source_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
