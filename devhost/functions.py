"""What the host reads from the metadata the worker indexed: each function's trigger.

The runtime imports the script, indexes the app and checks every function's parameters against
its bindings (``worker_init_request``); it answers ``functions_metadata_request`` with an
``RpcFunctionMetadata`` per function, whose ``raw_bindings`` are the bindings' JSON. Routing and
schedules are the host's job, so devhost reads them here, resolving ``%SETTING%`` references and
``AzureWebJobs.<name>.Disabled`` the way the host does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devhost.ncrontab import Schedule, parse_schedule
from devhost.settings import UnresolvedSetting, is_disabled, resolve_references

logger = logging.getLogger("devhost")

# A timer fires with IsPastDue only when monitored; the host monitors by default when the
# schedule's interval is at least a minute.
_MONITOR_THRESHOLD_SECONDS = 60


@dataclass(frozen=True)
class HttpTrigger:
    route: str
    methods: tuple[str, ...] | None
    auth_level: str


@dataclass(frozen=True)
class TimerTrigger:
    schedule: Schedule | None
    run_on_startup: bool
    use_monitor: bool
    error: str | None


@dataclass(frozen=True)
class IndexedFunction:
    name: str
    function_id: str
    trigger_type: str
    trigger_parameter: str
    trigger: HttpTrigger | TimerTrigger | None
    disabled: bool


def read_function(metadata: Any) -> IndexedFunction:
    """One ``RpcFunctionMetadata`` as the host reads it (the runtime guarantees one trigger)."""
    name = str(metadata.name)
    bindings = [json.loads(raw) for raw in metadata.raw_bindings]
    trigger = next(binding for binding in bindings if binding["type"].endswith("Trigger"))
    for binding in bindings:
        if binding is not trigger and binding["name"] != "$return":
            logger.warning(
                "devhost does not provide the %s binding '%s' of '%s'; invocations will fail",
                binding["type"],
                binding["name"],
                name,
            )
    return IndexedFunction(
        name=name,
        function_id=str(metadata.function_id),
        trigger_type=trigger["type"],
        trigger_parameter=trigger["name"],
        trigger=_trigger(name, trigger),
        disabled=is_disabled(name),
    )


def _trigger(name: str, binding: dict[str, Any]) -> HttpTrigger | TimerTrigger | None:
    if binding["type"] == "httpTrigger":
        methods = binding.get("methods")
        return HttpTrigger(
            route=binding.get("route") or name,
            methods=tuple(method.upper() for method in methods) if methods else None,
            auth_level=str(binding.get("authLevel", "FUNCTION")).upper(),
        )
    if binding["type"] == "timerTrigger":
        return _timer(name, binding)
    return None


def _timer(name: str, binding: dict[str, Any]) -> TimerTrigger:
    run_on_startup = bool(binding.get("runOnStartup", False))
    try:
        schedule = parse_schedule(resolve_references(str(binding["schedule"])))
    except (UnresolvedSetting, ValueError) as exc:
        message = f"Error indexing method 'Functions.{name}'. {exc.args[0]}"
        logger.error("The '%s' function is in error: %s", name, message)
        return TimerTrigger(None, run_on_startup, use_monitor=False, error=message)
    use_monitor = binding.get("useMonitor")
    if use_monitor is None:
        first = schedule.next_after(datetime.now())
        second = schedule.next_after(first) if first else None
        use_monitor = bool(
            first and second and (second - first).total_seconds() >= _MONITOR_THRESHOLD_SECONDS
        )
    return TimerTrigger(schedule, run_on_startup, bool(use_monitor), error=None)
