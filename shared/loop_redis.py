"""The cache's Redis client for code running on the worker's event loop.

An ``async def`` function runs on the worker's event loop, where a blocking redis-py call would
stall every other invocation on it: such code reads through ``redis.asyncio`` instead. An
asyncio client belongs to the loop it first ran on, so one is kept per loop (the worker has one;
a test may run several in turn) and a client made for a loop that has gone is dropped with it.

Each client comes with as many slots as its pool has connections: a read that finds none free
does not wait for one (a wait would end in the pool's timeout, which is no failure of Redis,
yet would open the breaker for every thread); it goes to a thread instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis


class LoopRedis:
    """``client()``: the running loop's client and its free connections (a semaphore), made by
    ``connect`` on first use there."""

    def __init__(self, connect: Callable[[], Redis], connections: int) -> None:
        self._connect = connect
        self._connections = connections
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: tuple[Redis, asyncio.Semaphore] | None = None

    def client(self) -> tuple[Redis, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._loop is not loop or self._client is None:
                self._loop = loop
                self._client = self._connect(), asyncio.Semaphore(self._connections)
            return self._client
