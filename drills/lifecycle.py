"""What the drills start and must stop: a context manager over ``start()`` and ``close()``."""

from __future__ import annotations

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
