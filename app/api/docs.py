"""Swagger UI and ReDoc served by Sentinel itself, so `/docs` works without internet.

The JavaScript, CSS and favicon come from the `fastapi-offline` package (which ships
Swagger UI's and ReDoc's release bundles); nothing is copied into this repository and
no page loads an asset from another host.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
# Under /docs so the production gate's `/docs/*` exemption and the docs CSP cover it.
ASSETS_URL = "/docs/assets"
# The pages may load only from this server: ReDoc's sidebar badge points at cdn.redoc.ly, and
# this policy keeps the browser from even trying (the badge hides itself when it cannot load).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


# ReDoc's sidebar badge loads https://cdn.redoc.ly/redoc/logo-mini.svg: the CSP blocks it, and
# the browser reports a violation on every visit. ReDoc is served from a copy whose badge
# points at an empty `data:` image instead (the badge hides itself when its image fails).
REDOC_JS_URL = "/docs/redoc.js"
_REDOC_BADGE = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def redoc_js() -> bytes:
    return (ASSETS_DIR / "redoc.standalone.js").read_bytes().replace(_REDOC_BADGE, b"data:,")


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def install_docs(app: FastAPI) -> None:
    """Mount the assets and add /docs, its OAuth2 redirect, /redoc and /favicon.ico."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    # HEAD too: link checkers and uptime probes ask with HEAD (GET's headers, no body).
    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect_url}",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return _local_only(page)

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.api_route("/redoc", methods=["GET", "HEAD"], include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{REDOC_JS_URL}",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        return _local_only(page)

    @app.get(REDOC_JS_URL, include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(
            redoc_js(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(ASSETS_DIR / "favicon.png", media_type="image/png")
