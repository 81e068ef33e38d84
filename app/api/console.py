"""`GET /console`: the operations console's static page and assets (public; the page's API
calls carry the user's token, so the production gate still guards every piece of data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from app.console import STATIC_DIR
from app.core.errors import NotFound

router = APIRouter(tags=["console"], include_in_schema=False)

# Scripts, styles and API calls from this origin only; nothing from another host.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript"}
ASSETS = {p.name: p for p in STATIC_DIR.iterdir() if p.suffix in _TYPES}


def _file(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise NotFound(f"No console asset named {name!r}")
    return FileResponse(
        path,
        media_type=_TYPES[path.suffix],
        headers={"Content-Security-Policy": CONSOLE_CSP, "Cache-Control": "no-cache"},
    )


@router.get("/console/")
async def console_slash() -> RedirectResponse:
    """One canonical address for the page."""
    return RedirectResponse("/console", status_code=308)


@router.get("/console")
async def console_page() -> FileResponse:
    """The console page (sign-in happens in the page against `/api/v1/auth/login`)."""
    return _file("index.html")


@router.get("/console/{name}")
async def console_asset(name: str) -> FileResponse:
    """A console script or stylesheet (a fixed set of files shipped in the package)."""
    return _file(name)
