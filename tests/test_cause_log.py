"""A failure's cause is logged once, then counted, then reported again a minute later."""

import logging

from shared.cause_log import CauseLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_cause_is_logged_once_per_interval_with_the_count_of_the_rest(caplog):
    clock = Clock()
    log = CauseLog(logging.getLogger("cause-test"), interval=60, clock=clock)
    with caplog.at_level(logging.ERROR, logger="cause-test"):
        for n in range(50):
            log.report("database unavailable", f"OperationalError (request {n})")
        log.report("connection pool exhausted", "TimeoutError (request 50)")
        clock.now += 59
        log.report("database unavailable", "OperationalError (request 51)")
        clock.now += 2
        log.report("database unavailable", "OperationalError (request 52)")
        log.report("database unavailable", "OperationalError (request 53)")
    assert caplog.messages == [
        "database unavailable: OperationalError (request 0)",
        "connection pool exhausted: TimeoutError (request 50)",
        "database unavailable: OperationalError (request 52) (and 50 more since the last "
        "report of this cause)",
    ]
