"""``functionTimeout``, enforced the way the Functions host enforces it for a language worker.

When an invocation runs longer than the timeout, the host logs ``Timeout value of <t> exceeded
by function 'Functions.<name>' (Id: '<id>'). Initiating cancellation.`` and fails the
invocation at once (an HTTP caller gets the host's empty 500). The worker cannot be made to stop
a Python function, so the host then waits a grace period (two seconds, WebJobs'
``TimeoutAttribute.GracePeriod``) for it to finish anyway; if it has not, it logs ``A function
timeout has occurred. Restarting worker process executing invocationId '<id>'.`` and restarts the
worker process, which fails every other invocation still running in it
(``WebScriptHostExceptionHandler.OnTimeoutExceptionAsync``). devhost's worker is its own process,
so the restart is devhost's (``on_restart``; see ``devhost.server``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from devhost.hostjson import timespan

logger = logging.getLogger("devhost")

GRACE_SECONDS = 2.0


class InvocationFailed(Exception):
    """The host failed the invocation itself; the message is what it logs as the failure."""


class FunctionTimeouts:
    def __init__(self, limit: float | None) -> None:
        """``limit``: seconds, None for no limit. ``on_restart`` restarts the worker process."""
        self._limit = limit
        self.on_restart: Callable[[], None] = lambda: None
        self._waiting: set[asyncio.Future[Any]] = set()
        self._restarting = False
        self._graces: set[asyncio.Task[None]] = set()

    async def run[T](self, name: str, invocation_id: str, invocation: Awaitable[T]) -> T:
        """The invocation's result, or InvocationFailed when it times out or the worker
        restarts under it."""
        running = asyncio.ensure_future(invocation)
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        running.add_done_callback(lambda done: _settle(waiter, done))
        self._waiting.add(waiter)
        try:
            result = await asyncio.wait_for(waiter, self._limit)
        except TimeoutError:
            assert self._limit is not None
            limit = timespan(self._limit)
            logger.error(
                "Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). "
                "Initiating cancellation.",
                limit,
                name,
                invocation_id,
            )
            grace = asyncio.create_task(self._restart_unless_done(running, invocation_id))
            self._graces.add(grace)
            grace.add_done_callback(self._graces.discard)
            raise InvocationFailed(
                f"Microsoft.Azure.WebJobs.Host: Timeout value of {limit} was exceeded by "
                f"function: Functions.{name}."
            ) from None
        finally:
            self._waiting.discard(waiter)
        return result

    async def _restart_unless_done[T](self, running: asyncio.Future[T], invocation_id: str) -> None:
        await asyncio.wait({running}, timeout=GRACE_SECONDS)
        if running.done() or self._restarting:
            return
        self._restarting = True
        logger.warning(
            "A function timeout has occurred. Restarting worker process executing "
            "invocationId '%s'.",
            invocation_id,
        )
        for waiter in list(self._waiting):
            if not waiter.done():
                waiter.set_exception(
                    InvocationFailed("The worker process running the invocation was restarted.")
                )
        self.on_restart()


def _settle[T](waiter: asyncio.Future[T], done: asyncio.Future[T]) -> None:
    if waiter.done():
        return
    error = None if done.cancelled() else done.exception()
    if done.cancelled():
        waiter.cancel()
    elif error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(done.result())
