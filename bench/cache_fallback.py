"""What a cached read costs once the cache's breaker is open, against the same read with Redis up.

One app process under devhost (``manage.py serve``) on a fresh, migrated PostgreSQL database
and a private redis-server on a free port. A normal user with 5 items reads
``GET /api/v1/users/me`` and ``GET /api/v1/items/`` in turn, one request at a time (no other
load), in ABAB rounds: each round times ``--reads`` requests with Redis answering, then freezes
Redis (SIGSTOP, the worst outage for a breaker that still touched the network), waits for the
app to report ``memory`` mode, warms the in-process store, times the same ``--reads`` requests,
and thaws Redis. The issue's bound is that once the breaker is open a call adds at most 2 ms.

Run from the repository root (needs PostgreSQL; about 20 s):

    .venv/bin/python -m bench.cache_fallback [--rounds 4] [--reads 400]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from bench.host_logs import QUIET_INVOCATION_LOGS
from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, app_env, create_superuser, migrate
from tests.support.api import Api
from tests.support.cache_app import create_item, served, wait_for_mode
from tests.support.redis_server import RedisServer
from tests.support.services import temporary_database

WARM_READS = 50


def timed_reads(api: Api, reads: list[tuple[str, dict[str, str]]], count: int) -> list[float]:
    """Sequential GETs, each one's latency in ms; every one must answer 200."""
    latencies: list[float] = []
    for n in range(count):
        path, headers = reads[n % len(reads)]
        started = time.perf_counter()
        response = api.http.get(path, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.text}")
    return latencies


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--reads", type=int, default=400)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    healthy: list[float] = []
    fallback: list[float] = []
    with temporary_database("stratus_bench") as url, RedisServer() as redis_server:
        migrate(url)
        env = app_env(
            url,
            redis_server.url,
            **{"AzureWebJobs.redis_reconnect.Disabled": "true"},
            **QUIET_INVOCATION_LOGS,
        )
        create_superuser(env)
        with served(env, SUPERUSER, SUPERUSER_PASSWORD) as (_, api):
            user = api.new_user()
            for n in range(5):
                create_item(api, user, f"bench {n}")
            reads = [("/api/v1/users/me", user.headers), ("/api/v1/items/", user.headers)]
            for round_number in range(1, args.rounds + 1):
                wait_for_mode(api, "redis", timeout=10)
                timed_reads(api, reads, WARM_READS)
                up = timed_reads(api, reads, args.reads)
                redis_server.freeze()
                try:
                    timed_reads(api, reads, WARM_READS)  # trips the breaker, fills the store
                    wait_for_mode(api, "memory", timeout=5)
                    down = timed_reads(api, reads, args.reads)
                finally:
                    redis_server.thaw()
                print(
                    f"round {round_number}: median healthy {statistics.median(up):.3f} ms, "
                    f"fallback {statistics.median(down):.3f} ms"
                )
                healthy += up
                fallback += down
    added = statistics.median(fallback) - statistics.median(healthy)
    print(f"\n{len(healthy)} reads each, sequential")
    print("| cache | median | p90 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for name, values in (("redis (healthy)", healthy), ("memory (breaker open)", fallback)):
        print(
            f"| {name} | {statistics.median(values):.3f} ms | {percentile(values, 90):.3f} ms "
            f"| {percentile(values, 99):.3f} ms | {max(values):.3f} ms |"
        )
    print(f"\nadded by the fallback, median: {added:+.3f} ms (bound: +2 ms)")


if __name__ == "__main__":
    main()
