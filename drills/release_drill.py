"""The slot-swap drill: the release program (scripts/release.py) driving local slots under load.

    python manage.py drill release --report PATH [--short] [--wait-seconds S]

Three builds of this checkout, made in a temporary directory: N; N+1, which carries an additive
migration; N+2, another additive migration, which passes the staging smoke test but fails every
item write after the swap, because it needs a setting that was configured on staging only (a
sticky slot setting). Rolling back to N+1 then needs N+1 ready on N+2's schema (N-1). Both
slots (drills/slots.py) share one throwaway PostgreSQL database and one Redis namespace, while
8 clients read and write items through the production frontend:

- good release N -> N+1: no request fails, no acknowledged write is lost, the database is at
  N+1's head, production serves N+1;
- bad release N+1 -> N+2: the program swaps back by itself; production serves N+1 again within
  60 s of the failed check (the release's wait shortened from 30 s); no acknowledged write lost;
- manual rollback with a wrong expected version: refused before any swap.

The report holds exactly the keys issue 8 names; the exit status is 0 only when every goal held.
It needs no settings: PostgreSQL from STRATUS_TEST_PG_URL (default the tests' server), Redis from
STRATUS_TEST_REDIS_URL (a namespace of its own, removed afterwards), free loopback ports,
everything started is stopped, and the whole run is bounded by ``DEADLINE_SECONDS``.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from drills import builds, report
from drills.cache_namespace import REDIS_URL, forget_namespace, redis_unreachable
from drills.database import missing_items, revisions, throwaway_database
from drills.haproxy import binary as haproxy_binary
from drills.instance import ORIGIN, SUPERUSER, manage, production_settings
from drills.load import ItemLoad, accounts
from drills.slots import LocalSlots
from drills.watch import VersionWatch
from scripts.release import Outcome, Release, Slot

CLIENTS = 8
DEADLINE_SECONDS = 600
ROLLBACK_GOAL_SECONDS = 60.0
# N+2's new setting: the operator configured it on staging, as a slot (sticky) setting.
REQUIRED_SETTING = "ITEMS_AUDIT_TOPIC"


@dataclass(frozen=True)
class Pace:
    settle_seconds: float  # load before and after each release
    wait_seconds: float  # the release's wait between a swap and its verification
    requests_per_client: int


FULL = Pace(settle_seconds=10.0, wait_seconds=5.0, requests_per_client=30_000)
SHORT = Pace(settle_seconds=1.0, wait_seconds=2.0, requests_per_client=30_000)
LOAD_SECONDS = 240.0  # a bound per phase; a phase stops its load when the release is done


@dataclass(frozen=True)
class Builds:
    n: Path
    n1: Path
    n2: Path
    versions: tuple[str, str, str]
    n1_head: str  # N+2 expands the schema further: after its rollback N+1 serves it as N-1


def make_builds(work: Path) -> Builds:
    run = uuid.uuid4().hex[:8]
    versions = (f"n-{run}", f"n1-{run}", f"n2-{run}")
    n = builds.copy_build(work / "n", versions[0])
    n1 = builds.copy_build(work / "n1", versions[1], source=n)
    n1_head = builds.add_migration(n1, "drill first column", *builds.additive_column("drill_a"))
    n2 = builds.copy_build(work / "n2", versions[2], source=n1)
    builds.add_migration(n2, "drill second column", *builds.additive_column("drill_b"))
    builds.require_setting_for_item_writes(n2, REQUIRED_SETTING)
    return Builds(n, n1, n2, versions, n1_head)


STICKY: Mapping[Slot, Mapping[str, str]] = {
    "production": {
        "AzureWebJobs.redis_reconnect.Disabled": "false",
        "OTEL_SERVICE_NAME": "stratus-drill",
    },
    "staging": {
        "AzureWebJobs.redis_reconnect.Disabled": "true",
        "OTEL_SERVICE_NAME": "stratus-drill-staging",
    },
}


@dataclass
class Phase:
    outcome: Outcome
    load: ItemLoad
    watch: VersionWatch
    release: Release


def release_under_load(
    release: Release, slots: LocalSlots, tokens: list[str], pace: Pace, version: str, build: Path
) -> Phase:
    production = slots.url("production")
    with (
        VersionWatch(production) as watch,
        ItemLoad(
            production,
            tokens,
            requests_per_client=pace.requests_per_client,
            seconds=LOAD_SECONDS,
        ) as load,
    ):
        time.sleep(pace.settle_seconds)
        outcome = release.deploy(version, build)
        time.sleep(pace.settle_seconds)
    return Phase(outcome, load, watch, release)


def lost(phase: Phase, database: str) -> int:
    return len(missing_items(database, phase.load.acknowledged))


def good_release(phase: Phase, database: str, expected_head: str) -> dict[str, Any]:
    return {
        "version": phase.watch.latest(),
        "requests": len(phase.load.samples),
        "failed": len(phase.load.failed),
        "lost_writes": lost(phase, database),
        "migrated": revisions(database) == {expected_head},
    }


def bad_release(phase: Phase, database: str, previous: str) -> dict[str, Any]:
    failed_at = next(
        (at for event, at in phase.release.timeline if event == "production-check-failed"), None
    )
    back = phase.watch.steadily_serving_since(previous, failed_at) if failed_at else None
    return {
        "requests": len(phase.load.samples),
        "failed": len(phase.load.failed),
        "lost_writes": lost(phase, database),
        "rolled_back": phase.outcome is Outcome.ROLLED_BACK,
        "rollback_seconds": round(back - failed_at, 2) if back and failed_at else None,
        "serving_version": phase.watch.latest(),
    }


def goals(document: Mapping[str, Any], versions: tuple[str, str, str]) -> list[report.Goal]:
    good, bad = document["good_release"], document["bad_release"]
    seconds = bad["rollback_seconds"]
    return [
        report.Goal(f"good release: {good['requests']} requests under load", good["requests"] > 0),
        report.Goal(f"good release: {good['failed']} failed requests", good["failed"] == 0),
        report.Goal(f"good release: {good['lost_writes']} lost writes", good["lost_writes"] == 0),
        report.Goal("good release: the database is at N+1's head", good["migrated"]),
        report.Goal(
            f"good release: production serves {good['version']}", good["version"] == versions[1]
        ),
        report.Goal(f"bad release: {bad['requests']} requests under load", bad["requests"] > 0),
        report.Goal("bad release: rolled back automatically", bad["rolled_back"]),
        report.Goal(
            f"bad release: N+1 served again {seconds} s after the failed check (goal "
            f"<= {ROLLBACK_GOAL_SECONDS:g} s)",
            seconds is not None and seconds <= ROLLBACK_GOAL_SECONDS,
        ),
        report.Goal(f"bad release: {bad['lost_writes']} lost writes", bad["lost_writes"] == 0),
        report.Goal(
            f"bad release: production serves {bad['serving_version']}",
            bad["serving_version"] == versions[1],
        ),
        report.Goal(
            "manual rollback with a wrong expected version refused before any swap",
            document["manual_rollback_refused_wrong_version"],
        ),
    ]


def run(report_path: Path, *, short: bool, wait_seconds: float | None, out: TextIO) -> int:
    pace = SHORT if short else FULL
    if wait_seconds is not None:
        pace = Pace(pace.settle_seconds, wait_seconds, pace.requests_per_client)
    problem = redis_unreachable()
    if haproxy_binary() is None:
        problem = "haproxy is not installed (Debian package haproxy)"
    if problem:
        print(f"drill release: {problem}", file=out)
        return 2

    def drill() -> tuple[dict[str, Any], list[report.Goal]]:
        document, versions = _drill(pace, out)
        return document, goals(document, versions)

    return report.run("release", report_path, DEADLINE_SECONDS, drill, out)


def _drill(pace: Pace, out: TextIO) -> tuple[dict[str, Any], tuple[str, str, str]]:
    def say(message: str) -> None:
        print(f"drill: {message}", file=out, flush=True)

    with (
        tempfile.TemporaryDirectory(prefix="stratus-release-drill-") as work,
        throwaway_database("stratus_drill") as database,
    ):
        redis_url = REDIS_URL
        built = make_builds(Path(work))
        n, n1, n2 = built.versions
        settings = production_settings(database, redis_url)
        try:
            say(f"builds {n}, {n1} and {n2}, each with an additive migration over the last")
            manage(built.n, settings, "migrate")
            manage(built.n, settings, "create-superuser")
            with LocalSlots(
                built.n, settings={**settings, "APP_VERSION": n}, sticky=STICKY
            ) as slots:
                say(f"production {slots.url('production')}, staging {slots.url('staging')}")
                superuser = (SUPERUSER, settings["FIRST_SUPERUSER_PASSWORD"])
                tokens = accounts(slots.url("production"), superuser, CLIENTS)
                release = Release(
                    slots,
                    smoke_environ={
                        "SMOKE_USERNAME": superuser[0],
                        "SMOKE_PASSWORD": superuser[1],
                        "SMOKE_ORIGIN": ORIGIN,
                    },
                    wait_seconds=pace.wait_seconds,
                    poll_interval=0.25,
                    poll_attempts=240,
                    out=out,
                )
                say(f"good release {n} -> {n1} under load from {CLIENTS} clients")
                phase = release_under_load(release, slots, tokens, pace, n1, built.n1)
                good = good_release(phase, database, built.n1_head)

                say(f"bad release {n1} -> {n2}: {REQUIRED_SETTING} set on staging only")
                slots.sticky_names.add(REQUIRED_SETTING)
                slots.set_app_settings("staging", {REQUIRED_SETTING: "audit"})
                phase = release_under_load(release, slots, tokens, pace, n2, built.n2)
                bad = bad_release(phase, database, n1)

                say(f"manual rollback expecting {n} while staging holds {n2}")
                refused = release.rollback(n) is Outcome.REFUSED
                untouched = slots.app_settings("production").get("APP_VERSION") == n1
                untouched = untouched and release.serves(slots.url("production"), n1, attempts=1)
        finally:
            forget_namespace(redis_url, settings["CACHE_PREFIX"])
    document = {
        "good_release": good,
        "bad_release": bad,
        "manual_rollback_refused_wrong_version": refused and untouched,
    }
    return document, built.versions
