"""How long the work in progress may still wait for PostgreSQL: its database deadline.

The route wrapper opens one per invocation (``DB_DEADLINE_SECONDS``) and each readiness check
one of its own. The clock starts at the first wait for the database and every later wait (for a
pooled connection, a new connection, a statement, the commit, the rollback at the end) gets only
what is left, so a request waits that long in total, whatever fails and however. Outside a
deadline (the CLI, migrations) only the server-side timeouts apply. Imports nothing heavy: the
route wrapper opens a deadline for every request, database or not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Deadline:
    __slots__ = ("_expires", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._expires: float | None = None

    def remaining(self) -> float:
        """Seconds left (negative once past); the first call starts the clock."""
        now = time.monotonic()
        if self._expires is None:
            self._expires = now + self.seconds
        return self._expires - now


_current: ContextVar[Deadline | None] = ContextVar("database_deadline", default=None)


@contextmanager
def database_deadline(seconds: float) -> Iterator[Deadline]:
    deadline = Deadline(seconds)
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def remaining() -> float | None:
    """Seconds the current work may still wait for the database; None outside any deadline."""
    deadline = _current.get()
    return None if deadline is None else deadline.remaining()
