"""The console's static files: served from the package, public in production (the data is
not), with a CSP that allows nothing from another host."""

from __future__ import annotations

import re

from app.console import STATIC_DIR

PROD = {
    "environment": "production",
    "security": {"access_token": "console-test-service-token-0123456789abcdef"},
}


async def test_console_page_and_assets_are_served_with_a_same_origin_csp(client):
    r = await client.get("/console")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert 'src="/console/console.js"' in r.text
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        asset = await client.get(f"/console/{name}")
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith(kind)
    missing = await client.get("/console/nope.js")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert (await client.get("/console/../main.py")).status_code == 404


def test_console_loads_nothing_from_another_host():
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), path.name
        assert not re.search(r"url\(\s*[\"']?(https?:)?//", text), path.name
        assert 'fetch("http' not in text and "fetch('http" not in text, path.name


async def test_console_is_public_in_production_but_its_data_is_not(make_app, clean_state):
    async with make_app(**PROD) as (_, client):
        assert (await client.get("/console")).status_code == 200
        assert (await client.get("/console/console.js")).status_code == 200
        r = await client.get("/api/v1/sources")
        assert r.status_code == 401
        r = await client.get("/api/v1/events/stream")
        assert r.status_code == 401
