"""Deletes that run once more a little later, on one background thread per cache.

A write evicts its cached record after it commits. A reader that loaded the old row just before
the commit can still store it just after that eviction, and the stale record would then live for
its whole TTL. Deleting the key again ``delay`` seconds later removes what such a reader stored
within that time. Due deletes are sent together, each key once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000  # scheduled batches; beyond it the oldest is dropped (and logged once)


class DelayedDeletes:
    def __init__(
        self, delete: Callable[..., object], delay: float, limit: int = QUEUE_LIMIT
    ) -> None:
        """``delete(*keys)`` runs on the background thread; ``delay`` in seconds, > 0."""
        self._delete = delete
        self._delay = delay
        self._limit = limit
        self._due: deque[tuple[float, tuple[str, ...]]] = deque()
        self._condition = threading.Condition()
        self._closed = False
        self._warned = False
        self._thread: threading.Thread | None = None

    def schedule(self, keys: Iterable[str]) -> None:
        batch = tuple(keys)
        if not batch:
            return
        with self._condition:
            if self._closed:
                return
            if len(self._due) >= self._limit:
                self._due.popleft()
                if not self._warned:
                    self._warned = True
                    logger.warning("Delayed deletes fell behind: dropping the oldest")
            self._due.append((time.monotonic() + self._delay, batch))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="stratus-delayed-deletes", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def close(self) -> None:
        """Send every pending delete now (early is always safe), then stop the thread."""
        with self._condition:
            self._closed = True
            thread = self._thread
            self._condition.notify()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            batches, closing = self._next_batches()
            keys = dict.fromkeys(key for batch in batches for key in batch)
            if keys:
                try:
                    self._delete(*keys)
                except Exception:  # the thread must outlive any surprise
                    logger.exception("Delayed delete failed")
            if closing:
                return

    def _next_batches(self) -> tuple[list[tuple[str, ...]], bool]:
        """Wait until something is due (or the queue closes); take everything that is."""
        with self._condition:
            while True:
                if self._closed:
                    batches = [batch for _, batch in self._due]
                    self._due.clear()
                    return batches, True
                if self._due:
                    wait = self._due[0][0] - time.monotonic()
                    if wait <= 0:
                        now = time.monotonic()
                        batches = []
                        while self._due and self._due[0][0] <= now:
                            batches.append(self._due.popleft()[1])
                        return batches, False
                    self._condition.wait(wait)
                else:
                    self._condition.wait()
