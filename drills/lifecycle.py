"""What the drills start and must stop: servers (``start()``, ``close()``) and loops that run
beside the load on a thread of their own."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self


class Started:
    """``with`` runs ``start()`` and always ``close()``, also when ``start()`` failed half-way
    (so a server that came up before a later one failed is stopped). ``close()`` must be safe to
    call on what never started."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class InBackground(Started):
    """``with`` runs ``run()`` on a daemon thread while the block lasts; ``run`` loops until
    ``stopping`` is set, and the exit waits ``join_seconds`` at most for its last round."""

    join_seconds = 15.0

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stopping.set()
        if self._thread.ident is not None:  # started
            self._thread.join(self.join_seconds)
