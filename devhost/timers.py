"""Timer triggers fired on their schedules, logged the way the Functions host logs them."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime

from azure.functions.timer import TimerRequest

from devhost.indexing import IndexedFunction, TimerTrigger
from devhost.invoker import Invoker
from devhost.ncrontab import Schedule

logger = logging.getLogger("devhost")

# A firing this late (say, after an invocation overran the next occurrence) runs once straight
# away, past due when the timer is monitored, and the schedule resumes from the current time.
_LATE_SECONDS = 1.0


class TimerScheduler:
    def __init__(self, functions: Sequence[IndexedFunction], invoker: Invoker) -> None:
        self._timers = [
            (function, function.trigger, function.trigger.schedule)
            for function in functions
            if isinstance(function.trigger, TimerTrigger)
            and function.trigger.schedule is not None
            and not function.disabled
        ]
        self._invoker = invoker
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
            await self._fire(function, past_due=False)
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
            await self._fire(function, past_due=late and trigger.use_monitor)
            reference = datetime.now() if late else due

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _fire(self, function: IndexedFunction, past_due: bool) -> None:
        invocation_id = str(uuid.uuid4())
        logger.info(
            "Executing 'Functions.%s' (Reason='Timer fired at %s', Id=%s)",
            function.name,
            datetime.now().astimezone().isoformat(),
            invocation_id,
        )
        started = time.perf_counter()
        try:
            await self._invoker.invoke(function, TimerRequest(past_due=past_due), invocation_id)
        except Exception:
            outcome = "Failed"
            logger.exception("Exception while executing function: Functions.%s", function.name)
        else:
            outcome = "Succeeded"
        logger.info(
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
            function.name,
            outcome,
            invocation_id,
            (time.perf_counter() - started) * 1000,
        )
