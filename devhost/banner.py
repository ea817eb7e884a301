"""The function list printed at startup, in the shape ``func start`` prints it."""

from __future__ import annotations

from collections.abc import Sequence

from devhost.indexing import HttpTrigger, IndexedFunction, TimerTrigger
from devhost.routing import full_template

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
