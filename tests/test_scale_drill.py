"""The scale-out drill (short version), run from outside as an operator runs it: its report read.
Three instances behind HAProxy, PgBouncer in transaction mode and one private Redis, under 16
clients, while an instance is killed and Redis is shut down; ``manage.py drill scale`` (without
--short) holds each phase longer and judges throughput too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.scale_drill import (
    DEMOTION_GOAL_SECONDS,
    INSTANCES_POOL_TOTAL,
    KILLED,
    missing_tools,
)
from tests.support.drill_runs import short_drill
from tests.support.services import postgres_unreachable, unavailable

pytestmark = [pytest.mark.postgres]


def test_the_scale_drill_keeps_every_promise_of_issue_11(tmp_path: Path) -> None:
    missing = missing_tools()
    if missing:
        unavailable(f"not installed: {', '.join(missing)} (Debian packages)")
    problem = postgres_unreachable()
    if problem:
        unavailable(problem)
    report = tmp_path / "scale-drill.json"
    document = short_drill("scale", report, timeout=300)
    assert set(document) == {
        "instances",
        "requests",
        "failed_reads",
        "failed_writes",
        "lost_writes",
        "stale_reads",
        "instance_killed",
        "redis_restarted",
        "demotion_seen_seconds",
        "pgbouncer_pool_size",
        "pg_server_connections_peak",
        "throughput_by_instances",
        "latency_ms",
    }
    assert document["instances"] >= 3 and document["requests"] > 0
    assert document["failed_reads"] == 0
    assert document["lost_writes"] == 0
    assert document["stale_reads"] == 0
    failed = document["failed_writes"]
    assert failed["while_instance_died"] + failed["sign_ins_shed"] == failed["count"], failed
    assert all(write["outcome"] != "unknown" for write in failed["each"]), failed
    assert document["instance_killed"]["instance"] == KILLED
    assert document["instance_killed"]["back_in_rotation_seconds"] is not None
    assert document["redis_restarted"]["every_instance_back_on_redis_seconds"] is not None
    seen = document["demotion_seen_seconds"]
    assert seen is not None and seen <= DEMOTION_GOAL_SECONDS
    pool = document["pgbouncer_pool_size"]
    assert 0 < document["pg_server_connections_peak"] <= pool < INSTANCES_POOL_TOTAL
    assert set(document["throughput_by_instances"]) == {"1", "2", "3"}
    for run in document["throughput_by_instances"].values():
        assert run["requests"] > 0 and run["errors"] == 0, run
    phases = document["latency_ms"]
    assert {"steady", "instance_killed", "redis_down", "redis_back"} <= set(phases)
    for figures in phases.values():
        assert figures["requests"] > 0 and figures["p50"] <= figures["p95"] <= figures["p99"]
