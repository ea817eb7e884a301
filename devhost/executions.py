"""The host's log lines for an invocation's end."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("devhost")


def log_executed(name: str, invocation_id: str, started: float, failure: str | None) -> None:
    """``Executed 'Functions.<name>' (<outcome>, Id=..., Duration=...ms)``, and for a failure
    the runtime's exception and stack the way the host reports them (never in a response)."""
    duration = (time.perf_counter() - started) * 1000
    if failure is None:
        logger.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
            name,
            invocation_id,
            duration,
        )
        return
    logger.error(
        "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)\n"
        "Exception while executing function: Functions.%s. Result: Failure\n%s",
        name,
        invocation_id,
        duration,
        name,
        failure,
    )
