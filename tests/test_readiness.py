"""The readiness probe's own rules: deadlines, one round in flight, results cached briefly."""

import threading
import time

from shared.config import load_settings
from shared.readiness import (
    CheckResult,
    MigrationScripts,
    ReadinessProbe,
    check_config,
    migration_scripts,
    schema_verdict,
)


class CountingCheck:
    def __init__(self, result: CheckResult = CheckResult("pass"), delay: float = 0.0) -> None:
        self.calls = 0
        self.result = result
        self.delay = delay
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def __call__(self) -> CheckResult:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        self.release.wait(timeout=10)
        return self.result


def test_statuses_roll_up_to_ready_degraded_not_ready():
    probe = ReadinessProbe(
        {"a": CountingCheck(), "b": CountingCheck(CheckResult("warn", "fallback"))},
        budget_seconds=1,
        cache_seconds=0,
    )
    report = probe.report()
    assert report.ok and report.status == "degraded"
    assert report.public() == {"status": "degraded", "checks": {"a": "pass", "b": "warn"}}

    failing = ReadinessProbe(
        {"a": CountingCheck(CheckResult("fail", "secret reason"))},
        budget_seconds=1,
        cache_seconds=0,
    )
    report = failing.report()
    assert not report.ok and report.status == "not_ready"
    assert "secret reason" not in str(report.public())
    assert "secret reason" in str(report.detailed()["details"])


def test_checks_run_concurrently_under_one_budget():
    slow = {name: CountingCheck(delay=0.3) for name in ("a", "b", "c", "d")}
    probe = ReadinessProbe(slow, budget_seconds=1, cache_seconds=0)
    started = time.perf_counter()
    report = probe.report()
    assert report.status == "ready"
    assert time.perf_counter() - started < 0.9  # sequential would take 1.2 s


def test_a_hung_check_fails_at_the_deadline_and_is_not_started_twice():
    hung = CountingCheck()
    hung.release.clear()
    probe = ReadinessProbe(
        {"db": hung, "config": CountingCheck()}, budget_seconds=0.3, cache_seconds=0
    )
    try:
        started = time.perf_counter()
        report = probe.report()
        assert time.perf_counter() - started < 0.6
        assert report.checks["db"].status == "fail"
        assert report.checks["db"].reason == "timed out"
        assert report.checks["config"].status == "pass"

        again = probe.report()
        assert again.checks["db"].reason == "previous check still running"
        assert hung.calls == 1
    finally:
        hung.release.set()
    time.sleep(0.05)
    assert probe.report().checks["db"].status == "pass"
    assert hung.calls == 2


def test_a_burst_of_probes_costs_one_round():
    check = CountingCheck(delay=0.2)
    probe = ReadinessProbe({"db": check}, budget_seconds=1, cache_seconds=1.0)
    barrier = threading.Barrier(50)
    reports = []

    def call() -> None:
        barrier.wait(timeout=5)
        reports.append(probe.report())

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(reports) == 50
    assert check.calls == 1
    assert probe.rounds == 1
    assert len({id(report) for report in reports}) == 1


def test_the_cached_result_expires():
    check = CountingCheck()
    probe = ReadinessProbe({"db": check}, budget_seconds=1, cache_seconds=0.2)
    probe.report()
    probe.report()
    assert check.calls == 1
    time.sleep(0.25)
    probe.report()
    assert check.calls == 2


def test_config_check_reports_errors_by_variable():
    result = check_config(load_settings({"CACHE_TTL_SHORT": "abc"}))
    assert result.status == "fail"
    assert "CACHE_TTL_SHORT" in (result.reason or "")
    assert check_config(load_settings({})).status == "pass"


def test_the_warm_up_runs_once_before_the_first_checks():
    warmed: list[bool] = []

    def after_warm_up() -> CheckResult:
        return CheckResult("pass" if warmed else "fail", "ran before the warm-up")

    probe = ReadinessProbe(
        {"a": after_warm_up},
        budget_seconds=5,
        cache_seconds=0,
        warm_up=lambda: warmed.append(True),
    )
    assert probe.report().status == "ready"
    assert probe.report().status == "ready"
    assert warmed == [True]


def test_a_hung_warm_up_does_not_hold_the_round():
    stuck = threading.Event()
    probe = ReadinessProbe(
        {"a": CountingCheck()},
        budget_seconds=0.5,
        cache_seconds=0,
        warm_up=lambda: stuck.wait(timeout=30),
    )
    reports = []
    caller = threading.Thread(target=lambda: reports.append(probe.report()))
    caller.start()
    caller.join(timeout=10)
    stuck.set()
    assert reports and reports[0].status == "ready"


def test_a_failing_warm_up_leaves_the_verdict_to_the_checks():
    def warm_up() -> None:
        raise RuntimeError("no engine")

    probe = ReadinessProbe(
        {"a": CountingCheck()}, budget_seconds=1, cache_seconds=0, warm_up=warm_up
    )
    assert probe.report().status == "ready"


SCRIPTS = MigrationScripts(heads=frozenset({"b2"}), known=frozenset({"a1", "b2"}))


def test_migrations_pass_at_this_builds_head():
    assert schema_verdict(frozenset({"b2"}), SCRIPTS).status == "pass"


def test_migrations_warn_but_stay_ready_on_a_schema_a_newer_build_expanded():
    result = schema_verdict(frozenset({"c3"}), SCRIPTS)
    assert result.status == "warn"
    assert "newer than this build's head ['b2']" in (result.reason or "")
    probe = ReadinessProbe({"migrations": lambda: result}, budget_seconds=1, cache_seconds=0)
    assert probe.report().ok and probe.report().status == "degraded"


def test_migrations_fail_on_a_schema_behind_this_build_or_none_at_all():
    behind = schema_verdict(frozenset({"a1"}), SCRIPTS)
    assert behind.status == "fail"
    assert "behind this build's head ['b2']: run the migrations" in (behind.reason or "")
    empty = schema_verdict(frozenset(), SCRIPTS)
    assert empty.status == "fail" and "no schema" in (empty.reason or "")


def test_the_shipped_scripts_know_their_head():
    scripts = migration_scripts()
    assert len(scripts.heads) == 1 and scripts.heads <= scripts.known
