"""Calling functions the way the Python worker does: sync ones in a thread pool, async ones on
the event loop, with ``context`` passed only to functions that declare it."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devhost.context import InvocationContext, W3CTraceContext, set_thread_invocation
from devhost.indexing import IndexedFunction

logger = logging.getLogger("devhost")

THREAD_COUNT_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"


def thread_count(environ: Mapping[str, str] = os.environ) -> int:
    """The worker's pool size: the setting when it is a positive integer, else
    ThreadPoolExecutor's default of ``min(32, cpu_count + 4)``."""
    raw = environ.get(THREAD_COUNT_SETTING, "").strip()
    if raw:
        if raw.isdigit() and int(raw) >= 1:
            return int(raw)
        logger.warning("%s must be a positive integer; using the default", THREAD_COUNT_SETTING)
    return min(32, (os.cpu_count() or 1) + 4)


def _run_sync(call: Callable[..., Any], arguments: dict[str, Any], invocation_id: str) -> Any:
    set_thread_invocation(invocation_id)
    return call(**arguments)


class Invoker:
    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="devhost-worker")

    async def invoke(
        self,
        function: IndexedFunction,
        trigger_value: Any,
        invocation_id: str,
        trace_context: W3CTraceContext | None = None,
    ) -> Any:
        arguments: dict[str, Any] = {function.trigger_parameter: trigger_value}
        if function.wants_context:
            arguments["context"] = InvocationContext(
                invocation_id,
                function.name,
                function.directory,
                trace_context or W3CTraceContext(),
            )
        if function.is_async:
            set_thread_invocation(invocation_id)
            return await function.call(**arguments)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, _run_sync, function.call, arguments, invocation_id
        )

    def shutdown(self) -> None:
        """Drop queued work; callers wait for running invocations before calling this."""
        self._pool.shutdown(wait=False, cancel_futures=True)
