"""The function list printed at startup, in the shape ``func start`` prints it."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata

from devhost.functions import HttpTrigger, IndexedFunction, TimerTrigger
from devhost.protos import protobuf_version
from devhost.routing import full_template
from devhost.runtime import FunctionsRuntime

_INDENT = " " * 8


def _describe(function: IndexedFunction, base_url: str, route_prefix: str) -> str:
    trigger = function.trigger
    if isinstance(trigger, HttpTrigger):
        methods = f"[{','.join(trigger.methods)}] " if trigger.methods else ""
        text = f"{methods}{base_url}/{full_template(route_prefix, trigger.route)}"
    else:
        text = function.trigger_type
    if function.disabled:
        return f"{text} (disabled)"
    if isinstance(trigger, TimerTrigger) and trigger.error:
        return f"{text} (in error: not scheduled)"
    if trigger is None:
        return f"{text} (not run by devhost)"
    return text


def render_functions(functions: Sequence[IndexedFunction], base_url: str, route_prefix: str) -> str:
    if not functions:
        return "No job functions found."
    entries = "".join(
        f"\n{_INDENT}{function.name}: {_describe(function, base_url, route_prefix)}\n"
        for function in functions
    )
    return f"Functions:\n{entries}"


def runtime_line(runtime: FunctionsRuntime) -> str:
    """Which worker code serves the functions: what a local run's fidelity rests on."""
    return (
        f"Worker runtime: azure-functions-runtime {runtime.version} "
        f"(azure-functions {metadata.version('azure-functions')}, "
        f"protobuf {protobuf_version()}, Python {platform.python_version()})"
    )
