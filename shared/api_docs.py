"""Swagger UI and ReDoc pages over the app's OpenAPI document, with their assets served by the
app itself (never from a CDN: an API behind a private endpoint reaches none).

The assets are the Swagger UI and ReDoc builds that the ``fastapi-standalone-docs`` package ships
(Swagger UI under Apache-2.0, ReDoc under MIT, licence files beside them). Only its files are
read: importing that package would import FastAPI. They are read on first request, never at
import, and kept in memory with their ETag and a gzip copy.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

ASSET_PACKAGE = "fastapi_standalone_docs"
OPENAPI_URL = "/api/v1/openapi.json"
# Each page's assets sit under its own path, as FastAPI's standalone docs mount them (ReDoc
# fetches its logo relative to its page): page -> (folder in the package's static directory,
# the files served from it).
ASSETS = {
    "docs": ("swagger", ("swagger-ui-bundle.js", "swagger-ui.css")),
    "redoc": ("redoc", ("redoc.standalone.js", "logo-mini.svg")),
}
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Assets change only with the package: a day in the browser, then a 304 on revalidation.
ASSET_CACHE_CONTROL = "public, max-age=86400"
# Pages are tiny and name the project: revalidated each time.
PAGE_CACHE_CONTROL = "no-cache"
# The pages load scripts, styles and the document from this origin only (ReDoc's search runs
# in a worker it starts from a blob: URL; both UIs draw some icons from data: URLs).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class UnknownAsset(LookupError):
    """No asset by that name."""


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str  # of the identity body; the gzip copy's adds "-gzip", as a distinct representation

    def representation(self, accepts_gzip: bool) -> tuple[bytes, str]:
        if accepts_gzip:
            return self.gzipped, self.etag[:-1] + '-gzip"'
        return self.body, self.etag


def static_directory() -> Path:
    """The package's static folder, found without importing the package (which imports
    FastAPI)."""
    spec = importlib.util.find_spec(ASSET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{ASSET_PACKAGE} is not installed (requirements.txt lists it)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@functools.cache
def asset(page: str, name: str) -> Asset:
    """``name`` under ``/<page>/``; UnknownAsset unless the page serves that file."""
    folder, names = ASSETS[page]
    if name not in names:
        raise UnknownAsset(name)
    body = (static_directory() / folder / name).read_bytes()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    media_type = MEDIA_TYPES[Path(name).suffix]
    return Asset(body, gzip.compress(body, compresslevel=9, mtime=0), media_type, etag)


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether the client's ``If-None-Match`` names ``etag`` (weak or strong, or ``*``)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def accepts_gzip(accept_encoding: str | None) -> bool:
    for coding in (accept_encoding or "").lower().split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip() in {"gzip", "*"}:
            quality = params.strip().removeprefix("q=")
            return not params or _positive(quality)
    return False


def _positive(quality: str) -> bool:
    try:
        return float(quality) > 0
    except ValueError:
        return False


def swagger_ui_page(title: str) -> str:
    """Swagger UI as FastAPI configures it, plus the password flow's token URL for "Authorize"
    (from the document's OAuth2PasswordBearer scheme) and no online validator (off-host)."""
    config = {
        "url": OPENAPI_URL,
        "dom_id": "#swagger-ui",
        "layout": "BaseLayout",
        "deepLinking": True,
        "showExtensions": True,
        "showCommonExtensions": True,
        "validatorUrl": None,
    }
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} - Swagger UI</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
const ui = SwaggerUIBundle(Object.assign({_script_json(config)}, {{
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}}));
window.ui = ui;
</script>
</body>
</html>
"""


def redoc_page(title: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - ReDoc</title>
<link rel="icon" href="data:,">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{OPENAPI_URL}"></redoc>
<script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
"""


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c")
