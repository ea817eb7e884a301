"""Interactive API docs, as the template serves them: Swagger UI at /docs, ReDoc at /redoc, over
the app's own OpenAPI document, with their assets served from here (``shared.api_docs``).

Public, like ``/api/v1/openapi.json`` they render, and left out of that document, as FastAPI
leaves its docs routes out. ``API_DOCS_ENABLED=false`` turns them off (404).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from shared.errors import HTTPError
from shared.http import ApiRequest, Reply, route
from shared.lazy import lazy_import

if TYPE_CHECKING:
    from shared import api_docs
else:
    api_docs = lazy_import("shared.api_docs")

bp = func.Blueprint()


def _enabled(req: ApiRequest) -> None:
    if not req.settings.api_docs_enabled:
        raise HTTPError(404, "Not Found")


def _page(content: str) -> Reply:
    return Reply(
        content,
        media_type="text/html",
        headers={
            "Cache-Control": api_docs.PAGE_CACHE_CONTROL,
            "Content-Security-Policy": api_docs.CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )


@route(bp, "docs", "GET", include_in_schema=False)
def swagger_ui(req: ApiRequest) -> Reply:
    """Swagger UI: try the API in the browser; "Authorize" signs in with the password flow."""
    _enabled(req)
    return _page(api_docs.swagger_ui_page(req.settings.project_name))


@route(bp, "redoc", "GET", include_in_schema=False)
def redoc(req: ApiRequest) -> Reply:
    """ReDoc: the same document as a readable reference."""
    _enabled(req)
    return _page(api_docs.redoc_page(req.settings.project_name))


@route(bp, "docs/{name}", "GET", include_in_schema=False)
def swagger_ui_asset(req: ApiRequest) -> Reply:
    """Swagger UI's script and style."""
    return _asset(req, "docs")


@route(bp, "redoc/{name}", "GET", include_in_schema=False)
def redoc_asset(req: ApiRequest) -> Reply:
    """ReDoc's script and logo."""
    return _asset(req, "redoc")


def _asset(req: ApiRequest, page: str) -> Reply:
    """An asset, cached by the browser for a day, then revalidated by its ETag."""
    _enabled(req)
    try:
        asset = api_docs.asset(page, req.path_param("name"))
    except api_docs.UnknownAsset:
        raise HTTPError(404, "Not Found") from None
    body, etag = asset.representation(api_docs.accepts_gzip(req.header("accept-encoding")))
    headers = {
        "Cache-Control": api_docs.ASSET_CACHE_CONTROL,
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if api_docs.matches(req.header("if-none-match"), etag):
        return Reply(b"", status_code=304, headers=headers, media_type=asset.media_type)
    if body is asset.gzipped:
        headers["Content-Encoding"] = "gzip"
    return Reply(body, headers=headers, media_type=asset.media_type)
