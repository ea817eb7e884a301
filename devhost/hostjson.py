"""The part of ``host.json`` that changes how requests are routed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from devhost.errors import DevhostError

logger = logging.getLogger("devhost")

DEFAULT_ROUTE_PREFIX = "api"


def read_route_prefix(path: Path) -> str:
    """``extensions.http.routePrefix``, or the host's default ``api`` when it is not set."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        logger.info("%s not found; using the default route prefix '%s'", path, DEFAULT_ROUTE_PREFIX)
        return DEFAULT_ROUTE_PREFIX
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DevhostError(f"{path} is not valid JSON: {exc}") from None
    extensions = document.get("extensions") if isinstance(document, dict) else None
    http = extensions.get("http") if isinstance(extensions, dict) else None
    if not isinstance(http, dict) or "routePrefix" not in http:
        return DEFAULT_ROUTE_PREFIX
    prefix = http["routePrefix"]
    if not isinstance(prefix, str):
        raise DevhostError(f"{path}: extensions.http.routePrefix must be a string")
    return prefix.strip("/")
