"""The host's log lines for an invocation: ``Executing`` when it starts, ``Executed`` when it
ends, and for an HTTP trigger the request's method, route template and status.

Each function logs under its own category, ``Function.<name>``, as the host does, so
host.json's ``logging.logLevel`` (``"Function": "Warning"``, or one function's
``"Function.<name>"``) and its ``AzureFunctionsJobHost__logging__logLevel__Function`` override
quiet them the same way (``configure``). The id is the invocation id the runtime hands the app
(``context.invocation_id``): the app logs it and sends it to Application Insights.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable

from devhost.hostjson import LogLevels

HTTP_REASON = "This function was programmatically called via the host APIs."


@functools.cache
def _logger(name: str) -> logging.Logger:
    return logging.getLogger(f"Function.{name}")


def configure(levels: LogLevels, names: Iterable[str]) -> None:
    """Set each function's category to the level host.json (or its override) gives it."""
    for name in names:
        _logger(name).setLevel(levels.level_for(f"Function.{name}"))


def log_executing(name: str, invocation_id: str, reason: str) -> None:
    """``Executing 'Functions.<name>' (Reason='...', Id=...)``."""
    _logger(name).info("Executing 'Functions.%s' (Reason='%s', Id=%s)", name, reason, invocation_id)


def log_executed(name: str, invocation_id: str, started: float, failure: str | None) -> None:
    """``Executed 'Functions.<name>' (<outcome>, Id=..., Duration=...ms)``, and for a failure
    the runtime's exception and stack the way the host reports them (never in a response)."""
    duration = (time.perf_counter() - started) * 1000
    if failure is None:
        _logger(name).info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
            name,
            invocation_id,
            duration,
        )
        return
    _logger(name).error(
        "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)\n"
        "Exception while executing function: Functions.%s. Result: Failure\n%s",
        name,
        invocation_id,
        duration,
        name,
        failure,
    )


def log_http_request(name: str, method: str, route: str, status: int) -> None:
    """``Executed HTTP request: <method> /<route template> <status>``, after the invocation's
    end line. The template, not the path: a path parameter may carry an address or a token."""
    _logger(name).info("Executed HTTP request: %s /%s %d", method, route, status)
