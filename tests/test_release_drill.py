"""The slot-swap drill (short version), run from outside as an operator runs it: its report read.

The release program drives two ``manage.py serve`` slots behind a real HAProxy, under load, on a
throwaway database: a good release with a migration, a bad release that must roll itself back,
and a manual rollback that must be refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.haproxy import binary as haproxy_binary
from drills.release_drill import ROLLBACK_GOAL_SECONDS
from tests.support.drill_runs import short_drill
from tests.support.services import postgres_unreachable, unavailable

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_the_release_drill_keeps_every_promise_of_the_runbook(
    tmp_path: Path, redis_url: str
) -> None:
    if haproxy_binary() is None:
        unavailable("haproxy is not installed (Debian package haproxy)")
    problem = postgres_unreachable()
    if problem:
        unavailable(problem)
    report = tmp_path / "release-drill.json"
    document = short_drill("release", report, timeout=600)
    assert set(document) == {"good_release", "bad_release", "manual_rollback_refused_wrong_version"}
    good, bad = document["good_release"], document["bad_release"]
    assert set(good) == {"version", "requests", "failed", "lost_writes", "migrated"}
    assert set(bad) == {
        "requests",
        "failed",
        "lost_writes",
        "rolled_back",
        "rollback_seconds",
        "serving_version",
    }
    assert good["requests"] > 0 and good["failed"] == 0 and good["lost_writes"] == 0, good
    assert good["migrated"] is True
    assert bad["requests"] > 0 and bad["lost_writes"] == 0, bad
    assert bad["failed"] > 0  # N+2 failed writes while it served: the drill's defect is real
    assert bad["rolled_back"] is True
    assert 0 < bad["rollback_seconds"] <= ROLLBACK_GOAL_SECONDS
    assert bad["serving_version"] == good["version"]
    assert document["manual_rollback_refused_wrong_version"] is True
