"""The ``context`` argument as the worker runtime builds it, for calling a function directly."""

from __future__ import annotations

import asyncio
import functools
import inspect
import uuid
from collections.abc import Callable
from typing import Any

from azure_functions_runtime.bindings.context import get_context

from devhost.protos import load_protos


def invocation_context(function_name: str, trace_parent: str = "") -> Any:
    """A fresh invocation's context, from an ``InvocationRequest`` like the host's."""
    protos = load_protos()
    request = protos.InvocationRequest(
        invocation_id=str(uuid.uuid4()),
        trace_context=protos.RpcTraceContext(trace_parent=trace_parent),
    )
    return get_context(request, function_name, ".")


def call(function: Callable[..., Any], request: Any, context: Any) -> Any:
    """``function(request, context)`` as the worker calls it: an ``async def`` one awaited on
    one event loop for the whole process, as the worker has one."""
    result = function(request, context)
    return _worker_loop().run_until_complete(result) if inspect.isawaitable(result) else result


@functools.cache
def _worker_loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


@functools.cache
def app_functions() -> dict[str, Callable[..., Any]]:
    """The app's functions by name, indexed once per process as the worker indexes once: the
    FunctionApp builds its functions again on each ``get_functions()`` and then refuses the
    names it built the first time ("does not have a unique function name")."""
    import function_app

    return {
        str(f.get_function_name()): f.get_user_function() for f in function_app.app.get_functions()
    }
