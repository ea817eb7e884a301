"""The database outage drill (short version), run from outside as an operator runs it: its
report read. PostgreSQL behind a proxy the drill owns freezes, refuses connections, comes back,
under six clients; ``manage.py drill outage`` (without --short) freezes it for the issue's 20 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.outage_drill import (
    FROZEN_ANSWER_SECONDS,
    LIVENESS_SECONDS,
    READINESS_SECONDS,
    REFUSED_ANSWER_SECONDS,
)
from tests.support.drill_runs import short_drill
from tests.support.services import postgres_unreachable, unavailable

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_the_outage_drill_keeps_every_promise_of_issue_13(tmp_path: Path, redis_url: str) -> None:
    problem = postgres_unreachable()
    if problem:
        unavailable(problem)
    report = tmp_path / "outage-drill.json"
    document = short_drill("outage", report, timeout=300)
    assert set(document) == {
        "clients",
        "frozen_seconds",
        "refused_seconds",
        "liveness",
        "readiness",
        "frozen",
        "refused",
        "recovery",
        "writes",
    }
    assert document["clients"] >= 6
    live, ready = document["liveness"], document["readiness"]
    assert live["not_200"] == 0 and live["slowest_seconds"] <= LIVENESS_SECONDS, live
    assert ready["slowest_seconds"] <= READINESS_SECONDS, ready
    assert ready["during_outage"] > 0 and ready["not_503_during_outage"] == 0, ready
    for phase, bound in (("frozen", FROZEN_ANSWER_SECONDS), ("refused", REFUSED_ANSWER_SECONDS)):
        answers = document[phase]
        assert answers["requests"] > 0 and answers["unanswered"] == 0, answers
        assert answers["slowest_seconds"] <= bound, answers
        assert set(answers["statuses"]) <= {"200", "503"}, answers
        assert answers["503_without_retry_after"] == 0, answers
    # Frozen requests really waited for the database, and gave up at its deadline.
    assert document["frozen"]["statuses"].get("503", 0) > 0
    recovery = document["recovery"]
    assert recovery["after_5_seconds"] > 0 and recovery["not_200_after_5_seconds"] == 0, recovery
    assert set(recovery["statuses"]) <= {"200", "503"}, recovery
    writes = document["writes"]
    assert writes["acknowledged"] > 0 and writes["lost"] == 0, writes
    assert writes["half_written"] == 0, writes
