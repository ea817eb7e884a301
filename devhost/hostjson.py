"""What devhost honours in ``host.json``: the HTTP route prefix and ``functionTimeout``."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.errors import DevhostError

logger = logging.getLogger("devhost")

DEFAULT_ROUTE_PREFIX = "api"
# The host's default on the Premium and Dedicated plans (Elastic Premium runs this app); the
# Consumption plan's is 5 minutes.
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 30 * 60.0
# A .NET TimeSpan as host.json writes it: [d.]hh:mm:ss[.fffffff]
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$")


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = DEFAULT_ROUTE_PREFIX
    function_timeout: float | None = DEFAULT_FUNCTION_TIMEOUT_SECONDS  # None: unbounded ("-1")


def read_host_json(path: Path) -> HostConfig:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        logger.info("%s not found; using the host's defaults", path)
        return HostConfig()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DevhostError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DevhostError(f"{path} must hold a JSON object")
    return HostConfig(_route_prefix(path, document), _function_timeout(path, document))


def read_route_prefix(path: Path) -> str:
    """``extensions.http.routePrefix``, or the host's default ``api`` when it is not set."""
    return read_host_json(path).route_prefix


def _route_prefix(path: Path, document: dict[str, Any]) -> str:
    extensions = document.get("extensions")
    http = extensions.get("http") if isinstance(extensions, dict) else None
    if not isinstance(http, dict) or "routePrefix" not in http:
        return DEFAULT_ROUTE_PREFIX
    prefix = http["routePrefix"]
    if not isinstance(prefix, str):
        raise DevhostError(f"{path}: extensions.http.routePrefix must be a string")
    return prefix.strip("/")


def _function_timeout(path: Path, document: dict[str, Any]) -> float | None:
    value = document.get("functionTimeout")
    if value is None:
        return DEFAULT_FUNCTION_TIMEOUT_SECONDS
    if value == "-1":
        return None
    found = _TIMESPAN.match(value) if isinstance(value, str) else None
    if found is None:
        raise DevhostError(f"{path}: functionTimeout must be a TimeSpan such as 00:05:00, or -1")
    days, hours, minutes, seconds, fraction = found.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 59:
        raise DevhostError(f"{path}: functionTimeout {value!r} is not a valid TimeSpan")
    total = (
        int(days or 0) * 86400
        + int(hours) * 3600
        + int(minutes) * 60
        + int(seconds)
        + float(f"0.{fraction or 0}")
    )
    if total <= 0:
        raise DevhostError(f"{path}: functionTimeout must be positive, or -1 for no limit")
    return total


def timespan(seconds: float) -> str:
    """``[d.]hh:mm:ss[.fffffff]``, as the host writes a TimeSpan in its log lines."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    if days:
        text = f"{days}.{text}"
    if seconds != whole:
        text += f".{round((seconds - whole) * 10_000_000):07d}"
    return text
