"""A drill's bound on its own running time."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType


class DrillTimeout(Exception):
    """The drill ran past its bound."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Interrupt the drill (which then stops what it started) when it runs too long."""
    if sys.platform == "win32" or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        raise DrillTimeout(f"the drill did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
