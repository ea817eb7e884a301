"""The ``context`` argument as the worker runtime builds it, for calling a function directly."""

from __future__ import annotations

import uuid
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
