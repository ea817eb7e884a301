"""A bounded HTTP load: threads sending cached reads to the app, every response recorded.

Bounded in requests per thread and in seconds; ``stop()`` ends it early. Each sample keeps the
wall-clock start (comparable with the app's own timestamps on this machine), the latency and the
status (0 for a transport error, whose text is kept in ``errors``).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from drills.workers import Workers


@dataclass(frozen=True, slots=True)
class Sample:
    started: float  # time.time()
    seconds: float
    status: int
    path: str

    @property
    def ended(self) -> float:
        return self.started + self.seconds


class HttpLoad(Workers):
    def __init__(
        self,
        url: str,
        requests: Sequence[tuple[str, dict[str, str]]],
        threads: int,
        per_thread: int,
        seconds: float,
    ) -> None:
        """``requests``: (path, headers) pairs for GETs, taken in turn by every thread."""
        super().__init__(threads, join_timeout=seconds + 30)
        self.url = url
        self.requests = list(requests)
        self.per_thread = per_thread
        self.seconds = seconds
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def work(self, index: int) -> None:
        deadline = time.monotonic() + self.seconds
        samples: list[Sample] = []
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for n in range(self.per_thread):
                if self.stopping or time.monotonic() > deadline:
                    break
                path, headers = self.requests[(index + n) % len(self.requests)]
                started, clock = time.time(), time.perf_counter()
                try:
                    status = client.get(path, headers=headers).status_code
                except httpx.HTTPError as exc:
                    status = 0
                    with self._lock:
                        self.errors.append(f"{path}: {type(exc).__name__}: {exc}")
                samples.append(Sample(started, time.perf_counter() - clock, status, path))
        with self._lock:
            self.samples.extend(samples)

    def between(self, start: float, end: float) -> list[Sample]:
        """The samples that started and ended within [start, end] (wall-clock seconds)."""
        return [s for s in self.samples if s.started >= start and s.ended <= end]


def percentile_ms(samples: Sequence[Sample], percent: float) -> float:
    ms = sorted(s.seconds * 1000 for s in samples)
    return ms[min(len(ms) - 1, int(len(ms) * percent / 100))]


def summary(samples: Sequence[Sample]) -> str:
    if not samples:
        return "no samples"
    ms = sorted(s.seconds * 1000 for s in samples)
    return (
        f"n={len(ms)} median={statistics.median(ms):.2f} ms "
        f"p99={percentile_ms(samples, 99):.2f} ms max={ms[-1]:.2f} ms"
    )


def median_ms(samples: Sequence[Sample]) -> float:
    return statistics.median(s.seconds * 1000 for s in samples)
