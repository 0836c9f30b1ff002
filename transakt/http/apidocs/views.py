"""The docs page's routes: the page and its style sheet."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Final

from aiohttp import web

from transakt.http.apidocs.paths import APIDOCS_PATH, STYLESHEET_PATH
from transakt.http.apidocs.render import render_page
from transakt.http.openapi import OPENAPI_KEY

__all__ = ["setup_apidocs_routes"]

_STYLESHEET_FILE: Final = Path(__file__).resolve().parent / "apidocs.css"


class _Page:
    """The page, rendered once from the node's OpenAPI document, and its style sheet."""

    def __init__(self, document: bytes) -> None:
        self.html = render_page(json.loads(document)).encode()
        self.css = _STYLESHEET_FILE.read_bytes()
        self.css_etag = f'"{hashlib.sha256(self.css).hexdigest()[:32]}"'


_PAGE_KEY: Final = web.AppKey("apidocs_page", _Page)


def setup_apidocs_routes(app: web.Application) -> None:
    """Serve the docs page and its style sheet (after the OpenAPI document is built)."""
    app[_PAGE_KEY] = _Page(app[OPENAPI_KEY])
    app.router.add_get(APIDOCS_PATH, docs_page, name="api_docs")
    app.router.add_get(STYLESHEET_PATH, docs_stylesheet, name="api_docs_stylesheet")


async def docs_page(request: web.Request) -> web.Response:
    """GET /api/docs: every tag, operation, parameter, body and response, for people."""
    return web.Response(
        body=request.app[_PAGE_KEY].html,
        headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"},
    )


async def docs_stylesheet(request: web.Request) -> web.Response:
    """GET /api/docs/apidocs.css: the page's style sheet."""
    page = request.app[_PAGE_KEY]
    headers = {"Cache-Control": "no-cache", "ETag": page.css_etag}
    if any(tag.value == page.css_etag[1:-1] for tag in request.if_none_match or ()):
        return web.Response(status=304, headers=headers)
    return web.Response(body=page.css, headers={**headers, "Content-Type": "text/css"})
