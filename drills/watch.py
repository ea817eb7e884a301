"""Which version a URL serves, polled every few tenths of a second and kept as a timeline."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Self

import httpx


class VersionWatch:
    """``GET /healthz`` in a thread until stopped: (wall-clock time, version or None) samples."""

    def __init__(self, url: str, interval: float = 0.2) -> None:
        self.url = url
        self.interval = interval
        self.samples: list[tuple[float, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(10)

    def _poll(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while not self._stop.is_set():
                version: str | None = None
                try:
                    response = http.get("/healthz")
                    if response.status_code == 200:
                        version = response.json().get("version")
                except (httpx.HTTPError, ValueError):
                    pass
                self.samples.append((time.time(), version))
                self._stop.wait(self.interval)

    def steadily_serving_since(self, version: str, after: float) -> float | None:
        """The first time after ``after`` from which every sample reports ``version``."""
        since: float | None = None
        for at, seen in self.samples:
            if at < after:
                continue
            if seen != version:
                since = None
            elif since is None:
                since = at
        return since

    def latest(self) -> str | None:
        return self.samples[-1][1] if self.samples else None
