"""The one-click acknowledgement page behind each alert message's link (helper-owned
module): no session, the signed link is the credential."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.authz import GuardedRoute

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
