"""The scale-out drill: three instances behind HAProxy, PgBouncer and one Redis, under load, while
an instance dies and Redis goes away.

    python manage.py drill scale --report PATH [--short]

Topology (drills/scale_out.py): 3 ``manage.py serve`` instances of this checkout with the same
settings, HAProxy round-robin in front (health checks on ``/healthz``; GET, HEAD and PUT re-sent
to another instance when theirs dies: ``retry-on``, ``option redispatch``), PgBouncer in
transaction mode with a pool of 6 server connections where the instances' pools add up to 30,
a private redis-server, and a throwaway database on the server of ``STRATUS_TEST_PG_URL``.

1. Throughput: a read-heavy wrk run (``/users/me``, an item, a page of items) with 1, 2, then 3
   instances in rotation; each instance's memory afterwards.
2. 16 clients (drills/scale_load.py, whose docstring defines every count of the report) read and
   write items, sign in now and then; PostgreSQL's connections to the database are sampled.
   Faults during the load: instance ``c`` is killed (SIGKILL), then started again; Redis is shut
   down for 10 s and started again, empty; while it is down, a second superuser is demoted and
   deactivated through instance ``a`` while calling ``b`` and ``c`` directly.
3. Afterwards every item is read from the database: lost writes, and what each failed write did.

Goals: 0 failed reads, 0 lost writes, 0 stale reads, every failed write one in flight on the
killed instance with its outcome known, the demotion refused everywhere within 5 s, PostgreSQL's
connections within PgBouncer's pool, the killed instance and Redis back, and (not in ``--short``,
whose wrk runs are too brief to compare) 2 instances serving at least 1.3x the reads of one.
The exit status is 0 only when every goal held, 1 when one did not, 2 when it could not run.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from drills import report, wrk
from drills.cpu import OthersShare
from drills.database import ConnectionSampler, item_rows, throwaway_database
from drills.demotion import SuperuserCalls, seen_seconds
from drills.haproxy import binary as haproxy_binary
from drills.instance import SUPERUSER, manage, production_settings
from drills.load import access_token
from drills.pgbouncer import binary as pgbouncer_binary
from drills.redis_server import binary as redis_binary
from drills.scale_load import READS, REQUEST_TIMEOUT_SECONDS, Client, FailedWrite, Item, MixedLoad
from drills.scale_out import BACKEND, ScaleOut

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = 3
CLIENTS = 16
KILLED = "c"
DEMOTED_THROUGH = "a"
DB_POOL_SIZE, DB_MAX_OVERFLOW = 5, 5
INSTANCES_POOL_TOTAL = INSTANCES * (DB_POOL_SIZE + DB_MAX_OVERFLOW)
PGBOUNCER_POOL = 6
DEADLINE_SECONDS = 720
DEMOTION_GOAL_SECONDS = 5.0
SCALING_GOAL = 1.3  # 2 instances' reads per second over one's, on a 2-core machine
WRK_CONNECTIONS = 16
PROBE_INTERVAL_SECONDS = 5.0  # CACHE_PROBE_INTERVAL_SECONDS, the app's default


@dataclass(frozen=True)
class Pace:
    steady: float  # load before the first fault
    instance_down: float  # from the kill to the restart
    after_restart: float  # load once the instance is back in rotation
    redis_down: float
    redis_back: float  # load after Redis is back
    wrk_seconds: int
    pause: float  # each client's pause between requests


FULL = Pace(30.0, 10.0, 20.0, 10.0, 25.0, wrk_seconds=10, pause=0.02)
SHORT = Pace(3.0, 2.0, 3.0, 5.0, 5.0, wrk_seconds=1, pause=0.02)


def missing_tools() -> list[str]:
    """The Debian packages the drill needs that are not installed."""
    found = {
        "haproxy": haproxy_binary(),
        "pgbouncer": pgbouncer_binary(),
        "redis-server": redis_binary(),
        "wrk": wrk.binary(),
    }
    return [name for name, path in found.items() if path is None]


def run(report_path: Path, *, short: bool, out: TextIO) -> int:
    missing = missing_tools()
    if missing:
        print(f"drill scale: not installed: {', '.join(missing)} (Debian packages)", file=out)
        return 2
    pace = SHORT if short else FULL

    def drill() -> tuple[dict[str, Any], list[report.Goal]]:
        document = _drill(pace, out)
        return document, goals(document, judge_throughput=not short)

    return report.run("scale", report_path, DEADLINE_SECONDS, drill, out)


class Timeline:
    """When each phase of the load began (time.time())."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, float]] = []

    def mark(self, phase: str) -> float:
        now = time.time()
        self.starts.append((phase, now))
        return now

    def phase_of(self, moment: float) -> str | None:
        found = None
        for phase, start in self.starts:
            if moment >= start:
                found = phase
        return found


def _drill(pace: Pace, out: TextIO) -> dict[str, Any]:
    def say(message: str) -> None:
        print(f"drill: {message}", file=out, flush=True)

    with throwaway_database("stratus_scale") as database:
        name = database.rsplit("/", 1)[1]
        settings = production_settings(database, "redis://unused")
        settings.pop("REDIS_URL")
        manage(ROOT, settings, "migrate")
        manage(ROOT, settings, "create-superuser")
        settings |= {"DB_POOL_SIZE": str(DB_POOL_SIZE), "DB_MAX_OVERFLOW": str(DB_MAX_OVERFLOW)}
        with ScaleOut(
            ROOT, count=INSTANCES, settings=settings, database=name, pgbouncer_pool=PGBOUNCER_POOL
        ) as scale:
            say(f"{INSTANCES} instances behind {scale.url}, PgBouncer pool {PGBOUNCER_POOL}")
            admin = (SUPERUSER, settings["FIRST_SUPERUSER_PASSWORD"])
            clients = sign_up(scale.url, admin, CLIENTS)
            demoted = sign_up(scale.url, admin, 1, superuser=True)[0]
            throughput = measure_throughput(scale, clients[0], pace, say)
            say(f"{CLIENTS} clients under load; faults to come")
            timeline = Timeline()
            with (
                ConnectionSampler(name) as sampler,
                MixedLoad(scale.url, clients, seconds=300, pause=pace.pause) as load,
            ):
                faults = inject_faults(scale, timeline, pace, admin, demoted, say)
                load.stop()
            for stale in load.stale[:10]:
                say(f"stale read: {stale}")
            for call in [c for c in load.calls if c.kind in READS and not c.ok][:10]:
                say(f"failed read: {call} in phase {timeline.phase_of(call.started)}")
            for problem in load.problems[:10]:
                say(f"no answer: {problem}")
            say("load over; reading every item back from the database")
            rows = item_rows(database)
    return document_of(load, rows, timeline, faults, sampler, throughput)


def sign_up(
    url: str, admin: tuple[str, str], count: int, *, superuser: bool = False
) -> list[Client]:
    """``count`` new accounts, created by ``admin`` and signed in, in parallel."""
    with httpx.Client(base_url=url, timeout=60) as http:
        admin_token = access_token(http, *admin)

    def one(_: int) -> Client:
        email, password = f"scale-{uuid.uuid4().hex[:10]}@example.com", secrets.token_hex(8)
        with httpx.Client(base_url=url, timeout=60) as http:
            http.post(
                "/api/v1/users/",
                json={"email": email, "password": password, "is_superuser": superuser},
                headers={"Authorization": f"Bearer {admin_token}"},
            ).raise_for_status()
            return Client(email, password, access_token(http, email, password))

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def measure_throughput(scale: ScaleOut, client: Client, pace: Pace, say: Any) -> dict[str, Any]:
    """Reads per second of wrk with 1, 2, then 3 instances in rotation, and back (1, 2, 3, 3, 2,
    1: a drift of the machine weighs on every count alike); each count's mean, its runs, and the
    share of the machine other processes took meanwhile (a shared machine's other work)."""
    headers = {"Authorization": f"Bearer {client.token}"}
    with httpx.Client(base_url=scale.url, headers=headers, timeout=30) as http:
        item = http.post("/api/v1/items/", json={"title": "wrk", "description": "read"})
        item.raise_for_status()
    paths = ["/api/v1/users/me", f"/api/v1/items/{item.json()['id']}", "/api/v1/items/?limit=10"]
    counts = list(range(1, INSTANCES + 1))
    runs: dict[int, list[tuple[wrk.WrkRun, float]]] = {count: [] for count in counts}
    for count in counts + counts[::-1]:
        scale.in_rotation(count)
        wrk.run(scale.url, client.token, paths, seconds=1, connections=WRK_CONNECTIONS)  # warm
        with OthersShare(scale.pids) as others:
            result = wrk.run(
                scale.url,
                client.token,
                paths,
                seconds=pace.wrk_seconds,
                connections=WRK_CONNECTIONS,
            )
        runs[count].append((result, others.share))
        say(
            f"wrk with {count} instance(s): {result.requests_per_second} req/s "
            f"(other processes took {others.share:.0%} of the machine)"
        )
    scale.in_rotation(INSTANCES)
    memory = scale.memory_mb()
    return {str(count): throughput_figures(runs[count], memory) for count in counts}


def throughput_figures(
    runs: list[tuple[wrk.WrkRun, float]], memory: dict[str, float]
) -> dict[str, Any]:
    def mean(values: Sequence[float]) -> float:
        return round(sum(values) / len(values), 1)

    results = [result for result, _ in runs]
    return {
        "requests_per_second": mean([r.requests_per_second for r in results]),
        "runs_requests_per_second": [r.requests_per_second for r in results],
        "requests": sum(r.requests for r in results),
        "errors": sum(r.errors for r in results),
        "p50_ms": mean([r.p50_ms for r in results]),
        "p95_ms": mean([r.p95_ms for r in results]),
        "p99_ms": mean([r.p99_ms for r in results]),
        "others_cpu_share": round(sum(share for _, share in runs) / len(runs), 2),
        "rss_mb": memory,
    }


@dataclass
class Faults:
    killed_at: float
    down_at: float  # when HAProxy took it out of rotation
    back_in_rotation_after: float | None  # seconds from the kill
    redis_stopped_at: float
    redis_down_seconds: float
    back_on_redis_after: float | None  # seconds from Redis's restart until every instance used it
    demoted_at: float
    demotion_seen_seconds: float | None


def inject_faults(
    scale: ScaleOut,
    timeline: Timeline,
    pace: Pace,
    admin: tuple[str, str],
    demoted: Client,
    say: Any,
) -> Faults:
    timeline.mark("steady")
    time.sleep(pace.steady)
    say(f"SIGKILL to instance {KILLED}")
    killed_at = timeline.mark("instance_killed")
    scale.kill(KILLED)
    scale.haproxy.wait_for(BACKEND, KILLED, {"DOWN"}, timeout=30)
    down_at = time.time()
    time.sleep(max(0.0, pace.instance_down - (down_at - killed_at)))
    scale.start_instance(KILLED)
    scale.haproxy.wait_for(BACKEND, KILLED, {"UP"}, timeout=30)
    back = timeline.mark("instance_restarted")
    say(f"instance {KILLED} back in rotation {back - killed_at:.1f} s after the kill")
    time.sleep(pace.after_restart)

    others = {n: i.url for n, i in scale.instances.items() if n != DEMOTED_THROUGH}
    with httpx.Client(base_url=scale.instances[DEMOTED_THROUGH].url, timeout=30) as http:
        admin_token = access_token(http, *admin)
        user_id = http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {demoted.token}"}
        ).json()["id"]
        with SuperuserCalls(others, demoted.token) as calls:
            say("Redis shut down")
            stopped = timeline.mark("redis_down")
            scale.redis.stop()
            time.sleep(1.0)
            http.patch(
                f"/api/v1/users/{user_id}",
                json={"is_superuser": False, "is_active": False},
                headers={"Authorization": f"Bearer {admin_token}"},
            ).raise_for_status()
            demoted_at = time.time()
            say(f"superuser demoted and deactivated through {DEMOTED_THROUGH}")
            time.sleep(max(0.0, pace.redis_down - (time.time() - stopped)))
            scale.redis.start()
            restarted = timeline.mark("redis_back")
            say("Redis started again (empty)")
            # The cache's probe comes every 5 s: allow three, however short the phase.
            wait = max(pace.redis_back, 3 * PROBE_INTERVAL_SECONDS)
            back_on_redis = wait_back_on_redis(scale, admin_token, restarted, wait)
            time.sleep(max(0.0, pace.redis_back - (time.time() - restarted)))
    return Faults(
        killed_at=killed_at,
        down_at=down_at,
        back_in_rotation_after=round(back - killed_at, 2),
        redis_stopped_at=stopped,
        redis_down_seconds=round(restarted - stopped, 1),
        back_on_redis_after=back_on_redis,
        demoted_at=demoted_at,
        demotion_seen_seconds=seen_seconds(calls.attempts, list(others), demoted_at),
    )


def wait_back_on_redis(
    scale: ScaleOut, admin_token: str, restarted: float, timeout: float
) -> float | None:
    """Seconds until every instance's cache said it was on Redis again, None if one did not."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    waiting = set(scale.instances)
    deadline = time.monotonic() + timeout
    with httpx.Client(headers=headers, timeout=5) as http:
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    stats = http.get(f"{scale.instances[name].url}/api/v1/cache/stats").json()
                    if stats.get("mode") == "redis":
                        waiting.discard(name)
            time.sleep(0.2)
    return None if waiting else round(time.time() - restarted, 1)


def document_of(
    load: MixedLoad,
    rows: Mapping[str, tuple[str, str | None]],
    timeline: Timeline,
    faults: Faults,
    sampler: ConnectionSampler,
    throughput: dict[str, Any],
) -> dict[str, Any]:
    reads = [call for call in load.calls if call.kind in READS]
    return {
        "instances": INSTANCES,
        "requests": len(load.calls),
        "failed_reads": sum(not call.ok for call in reads),
        "failed_writes": failed_writes(load.failed_writes, rows, faults),
        "lost_writes": len(lost_writes(load.items, rows)),
        "stale_reads": len(load.stale),
        "instance_killed": {
            "instance": KILLED,
            "signal": "SIGKILL",
            "back_in_rotation_seconds": faults.back_in_rotation_after,
        },
        "redis_restarted": {
            "down_seconds": faults.redis_down_seconds,
            "every_instance_back_on_redis_seconds": faults.back_on_redis_after,
        },
        "demotion_seen_seconds": faults.demotion_seen_seconds,
        "pgbouncer_pool_size": PGBOUNCER_POOL,
        "pg_server_connections_peak": sampler.peak,
        "throughput_by_instances": throughput,
        "latency_ms": latency_by_phase(load, timeline),
    }


def failed_writes(
    failed: Sequence[FailedWrite], rows: Mapping[str, tuple[str, str | None]], faults: Faults
) -> dict[str, Any]:
    """Each failed write and what the database shows it did; how many were in flight on the
    killed instance (sent to it, or unanswered, from a request's timeout before the kill until
    HAProxy took it out of rotation), and how many sign-ins were shed (503 with Retry-After: the
    password hashing queue was full)."""
    titles = {title for title, _ in rows.values()}
    each = []
    for write in failed:
        if write.kind == "login":
            outcome = "no data written"
        elif write.kind == "create":
            outcome = "applied" if write.title in titles else "not applied"
        elif write.kind == "delete":
            outcome = "not applied" if write.item in rows else "applied"
        else:
            row = rows.get(write.item or "")
            outcome = "applied" if row and row[1] == write.tried else "not applied"
        each.append(
            {"kind": write.kind, "status": write.status, "server": write.server, "outcome": outcome}
        )
    # Each failed write is counted once: a sign-in shed by the instance about to be killed is
    # a shed sign-in, not one more write lost with it.
    shed = [w.kind == "login" and w.status == 503 and bool(w.retry_after) for w in failed]
    return {
        "count": len(each),
        "while_instance_died": sum(
            not was_shed
            and w.server in (KILLED, "")
            and faults.killed_at - REQUEST_TIMEOUT_SECONDS <= w.at <= faults.down_at + 1
            for w, was_shed in zip(failed, shed, strict=True)
        ),
        "sign_ins_shed": sum(shed),
        "applied": sum(e["outcome"] == "applied" for e in each),
        "not_applied": sum(e["outcome"] == "not applied" for e in each),
        "each": each,
    }


def lost_writes(items: Sequence[Item], rows: Mapping[str, tuple[str, str | None]]) -> list[str]:
    """Items whose row is not what their last acknowledged write left (or, after a failed
    write, what that write would have left)."""
    lost = []
    for item in items:
        row = rows.get(item.id)
        acknowledged = None if item.deleted else (item.title, f"v{item.version}")
        allowed = {acknowledged}
        if item.failed == "delete":
            allowed.add(None)
        elif item.failed == "update":
            allowed.add((item.title, f"v{item.sent}"))
        if row not in allowed:
            lost.append(item.id)
    return lost


def latency_by_phase(load: MixedLoad, timeline: Timeline) -> dict[str, dict[str, float]]:
    by_phase: dict[str, list[float]] = {phase: [] for phase, _ in timeline.starts}
    for call in load.calls:
        phase = timeline.phase_of(call.started)
        if phase is not None:
            by_phase[phase].append((call.ended - call.started) * 1000)
    return {phase: percentiles(values) for phase, values in by_phase.items()}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"requests": 0}

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)

    return {"requests": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


def goals(document: dict[str, Any], *, judge_throughput: bool) -> list[report.Goal]:
    failed = document["failed_writes"]
    seen = document["demotion_seen_seconds"]
    peak, pool = document["pg_server_connections_peak"], document["pgbouncer_pool_size"]
    throughput = document["throughput_by_instances"]
    one, two = throughput["1"]["requests_per_second"], throughput["2"]["requests_per_second"]
    killed, redis = document["instance_killed"], document["redis_restarted"]
    found = [
        report.Goal(f"{document['instances']} instances", document["instances"] >= 3),
        report.Goal(f"{document['requests']} requests under load", document["requests"] > 0),
        report.Goal(f"{document['failed_reads']} failed reads", document["failed_reads"] == 0),
        report.Goal(
            f"{failed['count']} failed writes: {failed['while_instance_died']} in flight on the "
            f"killed instance, {failed['sign_ins_shed']} sign-ins shed with Retry-After; "
            f"{failed['applied']} applied, {failed['not_applied']} not",
            failed["while_instance_died"] + failed["sign_ins_shed"] == failed["count"],
        ),
        report.Goal(f"{document['lost_writes']} lost writes", document["lost_writes"] == 0),
        report.Goal(f"{document['stale_reads']} stale reads", document["stale_reads"] == 0),
        report.Goal(
            f"instance {killed['instance']} killed, back in rotation after "
            f"{killed['back_in_rotation_seconds']} s",
            killed["back_in_rotation_seconds"] is not None,
        ),
        report.Goal(
            f"Redis down {redis['down_seconds']} s; every instance back on it after "
            f"{redis['every_instance_back_on_redis_seconds']} s",
            redis["every_instance_back_on_redis_seconds"] is not None,
        ),
        report.Goal(
            f"demotion refused everywhere after {seen} s (goal <= {DEMOTION_GOAL_SECONDS:g} s)",
            seen is not None and seen <= DEMOTION_GOAL_SECONDS,
        ),
        report.Goal(
            f"PostgreSQL connections peaked at {peak}, within PgBouncer's pool of {pool} (the "
            f"instances' pools add up to {INSTANCES_POOL_TOTAL})",
            0 < peak <= pool < INSTANCES_POOL_TOTAL,
        ),
        report.Goal(
            "wrk: no errors",
            all(run["errors"] == 0 for run in throughput.values()),
        ),
    ]
    if judge_throughput:
        others = max(run["others_cpu_share"] for run in throughput.values())
        found.append(
            report.Goal(
                f"2 instances serve {two / one if one else 0:.2f}x the reads of one "
                f"({two} vs {one} req/s; goal >= {SCALING_GOAL:g}x; other processes took up to "
                f"{others:.0%} of the machine meanwhile)",
                one > 0 and two >= SCALING_GOAL * one,
            )
        )
    return found
