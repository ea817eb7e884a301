"""The ``context`` argument the worker passes to functions that declare one."""

from __future__ import annotations

import secrets
import threading

import azure.functions as func
from azure.functions._abc import RetryContext, RpcException, TraceContext

# One object for every invocation, as in the worker: each executing thread sets its own
# ``invocation_id`` attribute on it, which lets logging from user threads find the invocation.
_THREAD_LOCAL = threading.local()


def set_thread_invocation(invocation_id: str) -> None:
    _THREAD_LOCAL.invocation_id = invocation_id


class _NoException(RpcException):
    """A first attempt has no previous exception."""

    @property
    def source(self) -> str:
        return ""

    @property
    def stack_trace(self) -> str:
        return ""

    @property
    def message(self) -> str:
        return ""


class FirstAttempt(RetryContext):
    """devhost never retries, so every invocation is attempt 0 of 0."""

    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> RpcException:
        return _NoException()


class W3CTraceContext(TraceContext):
    """The caller's ``traceparent``/``tracestate`` when it sent them, else a fresh trace."""

    def __init__(self, trace_parent: str | None = None, trace_state: str | None = None) -> None:
        self._trace_parent = trace_parent or f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
        self._trace_state = trace_state or ""

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def trace_state(self) -> str:
        return self._trace_state

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationContext(func.Context):
    def __init__(
        self,
        invocation_id: str,
        function_name: str,
        function_directory: str,
        trace_context: TraceContext,
    ) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace_context = trace_context

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> RetryContext:
        return FirstAttempt()

    # azure.functions annotates this as ``type[threading.local]``; the worker, whose behaviour
    # functions rely on, returns an instance.
    @property
    def thread_local_storage(self) -> threading.local:  # type: ignore[override]
        return _THREAD_LOCAL
