"""What a request costs the app itself, beside one raw Redis round trip, in one process.

The registered functions are called directly, as the worker calls them (an
``azure.functions.HttpRequest`` and the runtime's ``context``; an ``async def`` function, as
both routes' are, awaited on the event loop, uvloop as under devhost; no HTTP server, no host
messages), in redis mode, on a fresh migrated PostgreSQL database. Each block's requests and
contexts are built before its clock starts, as the runtime builds them before it calls a
function: what is timed is the function, the app's own cost. The routes: ``GET
/api/v1/users/me`` and ``GET /api/v1/items/`` (the bench user owns 20 items). Beside them, on
the same thread (the loop's), the floor every cached read pays: a raw redis-py ``GET`` of a 1 KB
JSON document and ``json.loads`` of it. The raw GET and the routes take turns call by call
(``--calls`` rounds per block), so that a busy moment of a shared machine falls on all of them
alike; each route is reported as a ratio to the raw GET of the same run: the median of
``--blocks`` blocks' means, the least disturbed block, and the median of the calling thread's
CPU time, which no wait adds to. Run from the repository root (needs PostgreSQL and Redis):

    .venv/bin/python -m bench.handler_cost [--blocks 15] [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import logging
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import redis
import uvloop

from bench.api_throughput import clear_namespace
from bench.runtime_overhead import ROOT, Bench, seed
from devhost.runtime import FunctionsRuntime
from shared import config
from tests.conftest import REDIS_URL, app_env, create_superuser, migrate
from tests.support.services import temporary_database

ROUTES = (("read_user_me", "/api/v1/users/me"), ("read_items", "/api/v1/items/"))
RAW = "raw GET 1 KB + json.loads"


Costs = tuple[float, float]  # µs per call: wall clock, and the calling thread's CPU time


def raw_get(client: redis.Redis, key: str) -> Callable[[], object]:
    def call() -> object:
        raw = client.get(key)
        assert raw is not None
        return json.loads(raw)

    return call


async def block(
    bench: Bench, raw: Callable[[], object], auth: dict[str, str], calls: int
) -> dict[str, Costs]:
    """One block: ``calls`` rounds, each calling the raw GET and every route once, in turn, so
    that whatever else the machine does at a moment falls on all of them alike. The functions'
    arguments are built before the block starts; an async function's call is awaited here."""
    cases: dict[str, list[Callable[[], object]]] = {RAW: [raw] * calls}
    for name, path in ROUTES:
        function = bench.handlers[name]
        cases[path] = [
            functools.partial(function, *bench.arguments(name, path, auth)) for _ in range(calls)
        ]
    wall = dict.fromkeys(cases, 0)
    cpu = dict.fromkeys(cases, 0)
    for number in range(calls):
        for label, calls_of_case in cases.items():
            started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
            result = calls_of_case[number]()
            if inspect.isawaitable(result):
                await result
            cpu[label] += time.thread_time_ns() - started_cpu
            wall[label] += time.perf_counter_ns() - started
    return {label: (wall[label] / calls / 1e3, cpu[label] / calls / 1e3) for label in cases}


async def measure(blocks: int, calls: int, prefix: str) -> dict[str, list[Costs]]:
    runtime = FunctionsRuntime()
    functions = await runtime.start(str(ROOT))
    for function in functions:
        await runtime.load(function)
    bench = Bench(runtime, functions)
    auth = await seed(bench)
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{prefix}:bench-raw"
    document: list[dict[str, object]] = []
    while len(json.dumps(document)) < 990:
        document.append({"n": len(document), "text": "x" * 20})
    client.set(key, json.dumps(document[:-1]))
    assert 950 <= len(client.get(key) or b"") <= 1024
    for name, path in ROUTES:
        response = bench.call(name, path, auth)
        if inspect.isawaitable(response):
            response = await response
        assert response.status_code == 200, response.get_body()
    results: dict[str, list[Costs]] = {RAW: [], **{path: [] for _, path in ROUTES}}
    raw = raw_get(client, key)
    for number in range(blocks + 1):  # block 0 warms up and is not counted
        costs = await block(bench, raw, auth, calls)
        if number:
            for label, found in costs.items():
                results[label].append(found)
    client.close()
    runtime.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=15, help="alternating blocks")
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per block")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load = os.getloadavg()[0]
    with temporary_database("stratus_handler_cost") as database:
        migrate(database)
        prefix = f"stratus-hc-{uuid.uuid4().hex[:8]}"
        env = app_env(database, REDIS_URL, CACHE_PREFIX=prefix)
        create_superuser(env)
        os.environ.update(env)
        config.get_settings.cache_clear()  # read before the environment was set
        sys.path.insert(0, str(ROOT))
        try:
            results = asyncio.run(
                measure(args.blocks, args.calls, prefix), loop_factory=uvloop.new_event_loop
            )
        finally:
            clear_namespace(prefix)
    print(
        f"Python {platform.python_version()}; {os.cpu_count()} CPUs; load average (1 min) "
        f"{load:.2f} before, {os.getloadavg()[0]:.2f} after; tree {ROOT}"
    )
    command = ".venv/bin/python -m bench.handler_cost"
    print(f"Command: {command} --blocks {args.blocks} --calls {args.calls}")
    print()
    print(
        "| call | µs/request, median block | ratio | best block | ratio "
        "| thread CPU µs/request, median | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    raw = figures(results[RAW])
    for label, costs in results.items():
        found = figures(costs)
        ratios = [
            f"{value:.0f} | {value / base:.2f}x" for value, base in zip(found, raw, strict=True)
        ]
        name = label if label == RAW else f"GET {label}"
        print(f"| {name} | {' | '.join(ratios)} |")


def figures(costs: list[Costs]) -> tuple[float, float, float]:
    """Median wall clock, best (least disturbed) block's wall clock, median CPU."""
    walls = [wall for wall, _ in costs]
    return (
        statistics.median(walls),
        min(walls),
        statistics.median(cpu for _, cpu in costs),
    )


if __name__ == "__main__":
    main()
