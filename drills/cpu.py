"""CPU time from /proc: of a process, of the whole machine, and how much of the machine a run
left to processes that are not its own (other work on a shared machine)."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self


def process_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int]:
    """Busy and total ticks of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def _children_ticks() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * _TICKS_PER_SECOND


_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass
class OthersShare:
    """While in the ``with`` block: the share of the whole machine (all CPUs = 1.0) busy with
    processes other than ``pids()``, this process and the children it waited for."""

    pids: Callable[[], Iterable[int]]
    share: float = 0.0

    def __enter__(self) -> Self:
        self._own = self._own_ticks()
        self._busy, self._total = machine_ticks()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        busy, total = machine_ticks()
        own = self._own_ticks() - self._own
        elapsed = total - self._total
        self.share = round(max(0.0, busy - self._busy - own) / elapsed, 2) if elapsed else 0.0

    def _own_ticks(self) -> float:
        mine = process_ticks(os.getpid())
        return mine + sum(process_ticks(pid) for pid in self.pids()) + _children_ticks()
