"""Function indexing as the Python worker does it: import the app, read each function's bindings.

The worker imports the script, takes the single top-level ``FunctionRegister`` (a FunctionApp),
and checks every function's Python parameters against its bindings through
``inspect.signature`` (which follows ``__wrapped__``). Doing the same here makes a function that
the real worker would reject fail under devhost too, instead of only after deployment.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import azure.functions as func

from devhost.errors import DevhostError
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
    trigger_type: str
    trigger: HttpTrigger | TimerTrigger | None
    call: Callable[..., Any]
    trigger_parameter: str
    wants_context: bool
    is_async: bool
    directory: str
    disabled: bool


def find_app(module_name: str) -> tuple[func.FunctionRegister, str]:
    """The module's one function app, and the directory it lives in."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise DevhostError(
            f"Worker failed to index functions: cannot import {module_name}"
        ) from exc
    apps = [
        value
        for value in (getattr(module, name, None) for name in dir(module))
        if isinstance(value, func.FunctionRegister)
    ]
    if not apps:
        raise DevhostError(f"Could not find top level function app instances in {module_name}.")
    if len(apps) > 1:
        raise DevhostError(
            f"More than one {type(apps[0]).__name__} or other top level function app instances "
            f"are defined in {module_name}."
        )
    directory = os.path.dirname(os.path.abspath(module.__file__ or os.curdir))
    return apps[0], directory


def index_functions(module_name: str) -> list[IndexedFunction]:
    app, directory = find_app(module_name)
    try:
        functions = app.get_functions()
    except Exception as exc:
        raise DevhostError("Worker failed to index functions") from exc
    return [_index(function, directory) for function in functions]


def _index(function: func.Function, directory: str) -> IndexedFunction:
    name = function.get_function_name() or function.get_user_function().__name__
    bindings: list[dict[str, Any]] = [json.loads(raw) for raw in function.get_raw_bindings()]
    # azure.functions guarantees exactly one trigger per function.
    trigger = next(binding for binding in bindings if binding["type"].endswith("Trigger"))
    call = function.get_user_function()
    parameters = set(inspect.signature(call).parameters)
    bound = {binding["name"] for binding in bindings if binding["name"] != "$return"}
    wants_context = "context" in parameters and "context" not in bound
    parameters.discard("context")
    if parameters - bound:
        raise DevhostError(
            f"Function '{name}': the following parameters are declared in Python but not in "
            f"the function definition: {sorted(parameters - bound)}"
        )
    if bound - parameters:
        raise DevhostError(
            f"Function '{name}': the following parameters are declared as bindings but are "
            f"not present in Python: {sorted(bound - parameters)}"
        )
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
        trigger_type=trigger["type"],
        trigger=_trigger(name, trigger),
        call=call,
        trigger_parameter=trigger["name"],
        wants_context=wants_context,
        is_async=inspect.iscoroutinefunction(call),
        directory=directory,
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
