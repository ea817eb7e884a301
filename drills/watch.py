"""A probe polled every few tenths of a second and kept as a timeline: its status, how long it
took to answer and, for ``/healthz``, which version served it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from drills.lifecycle import InBackground


@dataclass(frozen=True, slots=True)
class ProbeSample:
    started: float  # time.time()
    seconds: float
    status: int  # 0: no answer within the watch's timeout
    version: str | None  # what a 200 from /healthz reported


class ProbeWatch(InBackground):
    """``GET <path>`` in a thread until stopped, one request at a time."""

    def __init__(
        self, url: str, path: str = "/healthz", interval: float = 0.2, timeout: float = 5.0
    ) -> None:
        super().__init__()
        self.url = url
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.join_seconds = timeout + 5
        self.samples: list[ProbeSample] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout) as http:
            while not self.stopping.is_set():
                started, clock = time.time(), time.perf_counter()
                status, version = 0, None
                try:
                    response = http.get(self.path)
                    status = response.status_code
                    if status == 200:
                        version = response.json().get("version")
                except (httpx.HTTPError, ValueError, AttributeError):
                    pass
                seconds = time.perf_counter() - clock
                self.samples.append(ProbeSample(started, seconds, status, version))
                self.stopping.wait(self.interval)


class VersionWatch(ProbeWatch):
    """Which version ``/healthz`` reports over time."""

    def __init__(self, url: str, interval: float = 0.2) -> None:
        super().__init__(url, "/healthz", interval)

    def steadily_serving_since(self, version: str, after: float) -> float | None:
        """The first time after ``after`` from which every sample reports ``version``."""
        since: float | None = None
        for sample in self.samples:
            if sample.started < after:
                continue
            if sample.version != version:
                since = None
            elif since is None:
                since = sample.started
        return since

    def latest(self) -> str | None:
        return self.samples[-1].version if self.samples else None
