"""What devhost honours in ``host.json``: the HTTP route prefix, ``functionTimeout`` and
``logging.logLevel``, each overridable by an ``AzureFunctionsJobHost__<path>`` variable (app
setting) as the host reads them, e.g. ``AzureFunctionsJobHost__logging__logLevel__Function``."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
# The host reads its configuration from app settings too: this prefix, then the path in
# host.json with "__" between the keys (case-insensitive, as all its configuration keys).
OVERRIDE_PREFIX = "AzureFunctionsJobHost__"
# .NET's log levels, as host.json names them, and Python's equivalents.
LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "information": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 1,
}


@dataclass(frozen=True)
class LogLevels:
    """``logging.logLevel``: the most specific category prefix wins, then ``default``."""

    levels: Mapping[str, int] = field(default_factory=dict)  # lower-case category -> level

    def level_for(self, category: str) -> int:
        category = category.lower()
        matches = [
            name
            for name in self.levels
            if name != "default" and (category == name or category.startswith(name + "."))
        ]
        if matches:
            return self.levels[max(matches, key=len)]
        return self.levels.get("default", logging.INFO)


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = DEFAULT_ROUTE_PREFIX
    function_timeout: float | None = DEFAULT_FUNCTION_TIMEOUT_SECONDS  # None: unbounded ("-1")
    log_levels: LogLevels = LogLevels()


def read_host_json(path: Path, environ: Mapping[str, str] | None = None) -> HostConfig:
    """host.json at ``path`` (the host's defaults when it is absent), with the overrides from
    ``environ`` (the process environment, where devhost has put the local settings)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        logger.info("%s not found; using the host's defaults", path)
        text = "{}"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DevhostError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DevhostError(f"{path} must hold a JSON object")
    _apply_overrides(document, os.environ if environ is None else environ)
    return HostConfig(
        _route_prefix(path, document),
        _function_timeout(path, document),
        _log_levels(path, document),
    )


def _apply_overrides(document: dict[str, Any], environ: Mapping[str, str]) -> None:
    for variable, value in environ.items():
        if not variable.lower().startswith(OVERRIDE_PREFIX.lower()):
            continue
        *parents, leaf = variable[len(OVERRIDE_PREFIX) :].split("__")
        node = document
        for key in parents:
            existing = _key(node, key)
            if not isinstance(node.get(existing), dict):
                node[existing] = {}
            node = node[existing]
        node[_key(node, leaf)] = value


def _key(node: dict[str, Any], key: str) -> str:
    """The key as host.json spells it, when it has it in another case."""
    return next((name for name in node if name.lower() == key.lower()), key)


def _log_levels(path: Path, document: dict[str, Any]) -> LogLevels:
    logging_section = document.get("logging")
    configured = logging_section.get("logLevel") if isinstance(logging_section, dict) else None
    if configured is None:
        return LogLevels()
    if not isinstance(configured, dict):
        raise DevhostError(f"{path}: logging.logLevel must be an object of category: level")
    levels = {}
    for category, name in configured.items():
        level = LOG_LEVELS.get(str(name).lower())
        if level is None:
            raise DevhostError(
                f"{path}: logging.logLevel.{category} is {name!r}; expected one of "
                "Trace, Debug, Information, Warning, Error, Critical, None"
            )
        levels[category.lower()] = level
    return LogLevels(levels)


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
