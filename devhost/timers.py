"""Timer triggers fired on their schedules, logged the way the Functions host logs them."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime

from devhost import messages
from devhost.executions import log_executed, log_executing
from devhost.functions import IndexedFunction, TimerTrigger
from devhost.ncrontab import Schedule
from devhost.runtime import FunctionsRuntime
from devhost.timeouts import FunctionTimeouts, InvocationFailed

logger = logging.getLogger("devhost")

# A firing this late (say, after an invocation overran the next occurrence) runs once straight
# away, past due when the timer is monitored, and the schedule resumes from the current time.
_LATE_SECONDS = 1.0


class TimerScheduler:
    def __init__(
        self,
        functions: Sequence[IndexedFunction],
        runtime: FunctionsRuntime,
        timeouts: FunctionTimeouts,
    ) -> None:
        self._timers = [
            (function, function.trigger, function.trigger.schedule)
            for function in functions
            if isinstance(function.trigger, TimerTrigger)
            and function.trigger.schedule is not None
            and not function.disabled
        ]
        self._runtime = runtime
        self._timeouts = timeouts
        self._last_fired: dict[str, datetime] = {}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for function, trigger, schedule in self._timers:
            self._tasks.append(
                asyncio.create_task(self._run(function, trigger, schedule), name=function.name)
            )

    async def stop(self, grace_seconds: float) -> None:
        """Let running timer invocations finish (within the grace period); schedule no more."""
        self._stopping.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
        for task in pending:
            logger.warning(
                "Timer function '%s' still running at shutdown; abandoned", task.get_name()
            )
            task.cancel()

    async def _run(
        self, function: IndexedFunction, trigger: TimerTrigger, schedule: Schedule
    ) -> None:
        if trigger.run_on_startup:
            await self._fire(function, trigger, schedule, past_due=False)
        reference = datetime.now()
        while not self._stopping.is_set():
            due = schedule.next_after(reference)
            if due is None:
                logger.warning(
                    "The schedule of 'Functions.%s' has no future occurrence", function.name
                )
                return
            delay = (due - datetime.now()).total_seconds()
            if delay > 0 and await self._stopped_within(delay):
                return
            late = delay < -_LATE_SECONDS
            await self._fire(function, trigger, schedule, past_due=late and trigger.use_monitor)
            reference = datetime.now() if late else due

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _fire(
        self, function: IndexedFunction, trigger: TimerTrigger, schedule: Schedule, past_due: bool
    ) -> None:
        invocation_id = str(uuid.uuid4())
        now = datetime.now()
        log_executing(
            function.name, invocation_id, f"Timer fired at {now.astimezone().isoformat()}"
        )
        protos = self._runtime.protos
        status = None
        if trigger.use_monitor:
            status = messages.schedule_status(
                self._last_fired.get(function.name), schedule.next_after(now)
            )
        self._last_fired[function.name] = now
        request = messages.invocation(
            protos,
            function.function_id,
            invocation_id,
            function.trigger_parameter,
            messages.timer_data(protos, past_due, status),
            protos.RpcTraceContext(trace_parent=messages.new_trace_parent()),
        )
        started = time.perf_counter()
        try:
            response = await self._timeouts.run(
                function.name, invocation_id, self._runtime.invoke(request)
            )
        except InvocationFailed as exc:
            log_executed(function.name, invocation_id, started, str(exc))
            return
        log_executed(function.name, invocation_id, started, self._runtime.failure(response))
