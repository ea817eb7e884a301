"""Log a failure's cause once, not once per request: an outage answers hundreds of requests 503.

The first occurrence of a cause is logged with its details; later ones are counted, and the
count is logged with the next occurrence once ``interval`` seconds have passed, so an ongoing
outage writes a line per cause per minute, and a new outage its first line at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Cause:
    logged_at: float
    unlogged: int = 0


class CauseLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        level: int = logging.ERROR,
    ) -> None:
        self._logger = logger
        self._level = level
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._causes: dict[str, _Cause] = {}

    def report(self, cause: str, detail: str) -> None:
        """``<cause>: <detail>`` at the log's level, unless this cause was logged within the
        interval."""
        now = self._clock()
        with self._lock:
            seen = self._causes.get(cause)
            if seen is not None and now - seen.logged_at < self._interval:
                seen.unlogged += 1
                return
            unlogged = seen.unlogged if seen is not None else 0
            self._causes[cause] = _Cause(logged_at=now)
        if unlogged:
            self._logger.log(
                self._level,
                "%s: %s (and %d more since the last report of this cause)",
                cause,
                detail,
                unlogged,
            )
        else:
            self._logger.log(self._level, "%s: %s", cause, detail)
