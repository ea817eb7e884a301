"""A bounded pool of load threads: each runs ``work(index)`` until it is done or told to stop."""

from __future__ import annotations

import threading
import time

from drills.lifecycle import Started


class Workers(Started):
    """Subclasses implement ``work(index)`` and check ``stopping`` between calls; ``with`` starts
    the threads and stops them at the end."""

    def __init__(self, threads: int, join_timeout: float) -> None:
        self.threads = threads
        self.join_timeout = join_timeout
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def work(self, index: int) -> None:
        raise NotImplementedError

    def start(self) -> None:
        for index in range(self.threads):
            worker = threading.Thread(target=self.work, args=(index,), daemon=True)
            self._workers.append(worker)
            worker.start()

    def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self.join(timeout=self.join_timeout)

    def join(self, timeout: float) -> bool:
        """Wait for the threads to finish their quota; whether they all did."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(worker.is_alive() for worker in self._workers)
