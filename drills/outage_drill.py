"""The database outage drill: PostgreSQL frozen, then refusing connections, then back, under load.

    python manage.py drill outage --report PATH [--short]

One app instance (``manage.py serve``) on a throwaway PostgreSQL database that it reaches through
a TCP proxy the drill owns (the real server is never touched), with Redis in a namespace of its
own. Six clients create, read and list items while ``/healthz`` and ``/readyz`` are polled; the
proxy then holds every byte and answers nothing (a frozen server, or a stalled path that still
acknowledges) for 20 s, then refuses connections and resets the open ones for 10 s, then passes
traffic again. The goals are issue 13's:

- ``/healthz`` answers 200 within 1 s throughout;
- ``/readyz`` answers within 1.5 s throughout, and 503 once its cached verdict has expired;
- while frozen every API request is answered within 10 s, while refused within 2 s, with 200
  or 503 carrying ``Retry-After``; never a 500;
- from 5 s after the database is back, only 200s;
- every acknowledged write is in the database; a create answered otherwise happened fully or
  not at all.

``--short`` (the test suite's run) freezes for 8 s and refuses for 4 s. The report holds
``liveness``, ``readiness``, ``frozen``, ``refused``, ``recovery`` and ``writes``; the exit status
is 0 only when every goal held, 1 when one did not, 2 when the drill could not run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from drills import report
from drills.cache_namespace import REDIS_URL, forget_namespace, redis_unreachable
from drills.database import (
    PG_ADMIN_URL,
    items_by_title,
    missing_items,
    throwaway_database,
)
from drills.instance import SUPERUSER, ServeInstance, manage, production_settings
from drills.load import ItemLoad, Sample, accounts
from drills.tcp_proxy import TcpProxy
from drills.watch import ProbeSample, ProbeWatch

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 6
DEADLINE_SECONDS = 300
LIVENESS_SECONDS = 1.0
READINESS_SECONDS = 1.5
FROZEN_ANSWER_SECONDS = 10.0
REFUSED_ANSWER_SECONDS = 2.0
RECOVERY_SECONDS = 5.0
# The app's defaults: how long /readyz may serve its last verdict, and one round's budget.
READINESS_CACHE_SECONDS = 1.5
READINESS_BUDGET_SECONDS = 1.0


@dataclass(frozen=True)
class Pace:
    settle_seconds: float
    frozen_seconds: float
    refused_seconds: float
    recovery_seconds: float


FULL = Pace(settle_seconds=5.0, frozen_seconds=20.0, refused_seconds=10.0, recovery_seconds=15.0)
SHORT = Pace(settle_seconds=2.0, frozen_seconds=8.0, refused_seconds=4.0, recovery_seconds=8.0)


@dataclass(frozen=True)
class Timeline:
    """Wall-clock times (time.time()) at which the database froze, refused and came back."""

    frozen: float
    refused: float
    back: float


def run(report_path: Path, *, short: bool, out: TextIO) -> int:
    pace = SHORT if short else FULL
    problem = redis_unreachable()
    if problem:
        print(f"drill outage: {problem}", file=out)
        return 2

    def drill() -> tuple[dict[str, Any], list[report.Goal]]:
        document = _drill(pace, out)
        return document, goals(document)

    return report.run("outage", report_path, DEADLINE_SECONDS, drill, out)


def _drill(pace: Pace, out: TextIO) -> dict[str, Any]:
    def say(message: str) -> None:
        print(f"drill: {message}", file=out, flush=True)

    host, port = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0].split(":")
    with throwaway_database("stratus_outage") as database, TcpProxy(host, int(port)) as proxy:
        settings = production_settings(database, REDIS_URL)
        manage(ROOT, settings, "migrate")
        manage(ROOT, settings, "create-superuser")
        proxied = database.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}", 1)
        instance = ServeInstance("outage")
        try:
            instance.start(ROOT, {**settings, "DATABASE_URL": proxied})
            say(f"app {instance.url}, PostgreSQL through the proxy on port {proxy.port}")
            superuser = (SUPERUSER, settings["FIRST_SUPERUSER_PASSWORD"])
            tokens = accounts(instance.url, superuser, CLIENTS)
            load_seconds = (
                pace.settle_seconds
                + pace.frozen_seconds
                + pace.refused_seconds
                + pace.recovery_seconds
                + 30
            )
            with (
                ProbeWatch(instance.url, "/healthz") as liveness,
                ProbeWatch(instance.url, "/readyz") as readiness,
                ItemLoad(
                    instance.url, tokens, requests_per_client=1_000_000, seconds=load_seconds
                ) as load,
            ):
                time.sleep(pace.settle_seconds)
                say(f"PostgreSQL frozen for {pace.frozen_seconds:g} s under {CLIENTS} clients")
                frozen = time.time()
                proxy.freeze()
                time.sleep(pace.frozen_seconds)
                say(f"PostgreSQL refusing connections for {pace.refused_seconds:g} s")
                refused = time.time()
                proxy.down()
                proxy.thaw()
                time.sleep(pace.refused_seconds)
                say(f"PostgreSQL back; watching for {pace.recovery_seconds:g} s")
                back = time.time()
                proxy.up()
                time.sleep(pace.recovery_seconds)
        finally:
            instance.stop()
            forget_namespace(REDIS_URL, settings["CACHE_PREFIX"])
        timeline = Timeline(frozen, refused, back)
        return {
            "clients": CLIENTS,
            "frozen_seconds": round(refused - frozen, 1),
            "refused_seconds": round(back - refused, 1),
            "liveness": probe_summary(liveness.samples),
            "readiness": readiness_summary(readiness.samples, timeline),
            "frozen": answers(frozen_phase(load.samples, timeline)),
            "refused": answers([s for s in load.samples if refused <= s.started < back]),
            "recovery": recovery(load.samples, back),
            "writes": writes(database, load),
        }


def probe_summary(samples: Sequence[ProbeSample]) -> dict[str, Any]:
    return {
        "probes": len(samples),
        "not_200": sum(sample.status != 200 for sample in samples),
        "slowest_seconds": round(max((sample.seconds for sample in samples), default=0.0), 3),
    }


def readiness_summary(samples: Sequence[ProbeSample], timeline: Timeline) -> dict[str, Any]:
    # A verdict reached just before the freeze may be served for its cache period, and a round
    # started just before it takes its budget: after both, every answer must be 503.
    settled = timeline.frozen + READINESS_CACHE_SECONDS + READINESS_BUDGET_SECONDS
    outage = [sample for sample in samples if settled <= sample.started < timeline.back]
    return {
        "probes": len(samples),
        "slowest_seconds": round(max((sample.seconds for sample in samples), default=0.0), 3),
        "during_outage": len(outage),
        "not_503_during_outage": sum(sample.status != 503 for sample in outage),
        "ready_again": bool(samples) and samples[-1].status == 200,
    }


def frozen_phase(samples: Sequence[Sample], timeline: Timeline) -> list[Sample]:
    """Requests sent while frozen, and those in flight when the freeze began."""
    return [
        sample
        for sample in samples
        if sample.started < timeline.refused
        and (sample.started >= timeline.frozen or sample.ended > timeline.frozen)
    ]


def answers(samples: Sequence[Sample]) -> dict[str, Any]:
    statuses = Counter(str(sample.status) for sample in samples)
    return {
        "requests": len(samples),
        "statuses": dict(sorted(statuses.items())),
        "unanswered": statuses.get("0", 0),
        "503_without_retry_after": sum(
            sample.status == 503 and not sample.retry_after for sample in samples
        ),
        "slowest_seconds": round(
            max((sample.ended - sample.started for sample in samples), default=0.0), 3
        ),
    }


def recovery(samples: Sequence[Sample], back: float) -> dict[str, Any]:
    after = [sample for sample in samples if sample.started >= back]
    settled = [sample for sample in after if sample.started >= back + RECOVERY_SECONDS]
    failures = [sample.started - back for sample in after if sample.status != 200]
    return {
        **answers(after),
        "after_5_seconds": len(settled),
        "not_200_after_5_seconds": sum(sample.status != 200 for sample in settled),
        "last_not_200_at_seconds": round(max(failures), 2) if failures else None,
    }


def writes(database: str, load: ItemLoad) -> dict[str, Any]:
    found = items_by_title(database, list(load.unacknowledged))
    answered_503 = [title for title, status in load.unacknowledged.items() if status == 503]
    return {
        "acknowledged": len(load.acknowledged),
        "lost": len(missing_items(database, load.acknowledged)),
        "answered_503": len(answered_503),
        "503_applied_whole": sum(found.get(title) == 1 for title in answered_503),
        "half_written": sum(count > 1 for count in found.values()),
    }


def goals(document: dict[str, Any]) -> list[report.Goal]:
    live, ready = document["liveness"], document["readiness"]
    frozen, refused, back = document["frozen"], document["refused"], document["recovery"]
    written = document["writes"]

    def answered(phase: dict[str, Any], name: str, seconds: float) -> list[report.Goal]:
        others = {
            status: n for status, n in phase["statuses"].items() if status not in {"200", "503"}
        }
        return [
            report.Goal(f"{name}: {phase['requests']} requests under load", phase["requests"] > 0),
            report.Goal(
                f"{name}: every request answered within {seconds:g} s (slowest "
                f"{phase['slowest_seconds']} s, {phase['unanswered']} unanswered)",
                phase["unanswered"] == 0 and phase["slowest_seconds"] <= seconds,
            ),
            report.Goal(
                f"{name}: only 200 or 503 with Retry-After ({phase['statuses']})",
                not others and phase["503_without_retry_after"] == 0,
            ),
        ]

    return [
        report.Goal(
            f"liveness: {live['probes']} probes, all 200 within {LIVENESS_SECONDS:g} s "
            f"(slowest {live['slowest_seconds']} s, {live['not_200']} not 200)",
            live["probes"] > 0
            and live["not_200"] == 0
            and live["slowest_seconds"] <= LIVENESS_SECONDS,
        ),
        report.Goal(
            f"readiness: every answer within {READINESS_SECONDS:g} s (slowest "
            f"{ready['slowest_seconds']} s)",
            ready["probes"] > 0 and ready["slowest_seconds"] <= READINESS_SECONDS,
        ),
        report.Goal(
            f"readiness: 503 during the outage once its verdict expired ({ready['during_outage']} "
            f"probes, {ready['not_503_during_outage']} not 503), ready again afterwards",
            ready["during_outage"] > 0
            and ready["not_503_during_outage"] == 0
            and ready["ready_again"],
        ),
        *answered(frozen, "frozen", FROZEN_ANSWER_SECONDS),
        *answered(refused, "refused", REFUSED_ANSWER_SECONDS),
        *answered(back, "recovery", FROZEN_ANSWER_SECONDS),
        report.Goal(
            f"recovery: only 200s from {RECOVERY_SECONDS:g} s after the database returned "
            f"({back['after_5_seconds']} requests, {back['not_200_after_5_seconds']} not 200; the "
            f"last one not 200 at {back['last_not_200_at_seconds']} s)",
            back["after_5_seconds"] > 0 and back["not_200_after_5_seconds"] == 0,
        ),
        report.Goal(
            f"writes: {written['lost']} of {written['acknowledged']} acknowledged writes lost",
            written["acknowledged"] > 0 and written["lost"] == 0,
        ),
        report.Goal(
            f"writes: {written['half_written']} half-written of {written['answered_503']} "
            f"answered 503 ({written['503_applied_whole']} applied whole)",
            written["half_written"] == 0,
        ),
    ]
