"""What a request costs the app itself, beside one raw Redis round trip, in one process.

The registered functions are called directly, as the worker calls them (an
``azure.functions.HttpRequest`` and the runtime's ``context``, on a thread of the runtime's
pool; no HTTP server, no host messages), in redis mode, on a fresh migrated PostgreSQL database.
Each block's requests and contexts are built before its clock starts, as the runtime builds them
before it calls a function: what is timed is the function, the app's own cost. The routes:
``GET /api/v1/users/me`` and ``GET /api/v1/items/`` (the bench user owns 20 items). Beside them,
on the same thread, the floor every cached read pays: a raw redis-py ``GET`` of a 1 KB JSON
document and ``json.loads`` of it. Routes and the raw GET alternate in blocks; each figure is
the median of ``--blocks`` blocks of ``--calls`` sequential calls, and each route is reported
as a ratio to the raw GET of the same run. Every route's response body is printed as a
SHA-256, so that two builds' runs show whether they answered byte for byte alike. Run from the
repository root (needs PostgreSQL and Redis):

    .venv/bin/python -m bench.handler_cost [--blocks 15] [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import azure_functions_runtime
import redis
import uvloop

from bench.api_throughput import clear_namespace
from bench.runtime_overhead import ROOT, Bench, per_call_us, seed
from devhost.runtime import FunctionsRuntime
from shared import config
from tests.conftest import REDIS_URL, app_env, create_superuser, migrate
from tests.support.services import temporary_database

ROUTES = (("read_user_me", "/api/v1/users/me"), ("read_items", "/api/v1/items/"))
RAW = "raw GET 1 KB + json.loads"


def raw_get(client: redis.Redis, key: str) -> Callable[[], object]:
    def call() -> object:
        raw = client.get(key)
        assert raw is not None
        return json.loads(raw)

    return call


def functions_us(bench: Bench, name: str, path: str, auth: dict[str, str], calls: int) -> float:
    """µs per call of the registered function, its arguments built beforehand."""
    function = bench.handlers[name]
    arguments = [bench.arguments(name, path, auth) for _ in range(calls)]
    started = time.perf_counter_ns()
    for request, context in arguments:
        status = function(request, context).status_code
    elapsed = time.perf_counter_ns() - started
    assert status == 200, status
    return elapsed / calls / 1e3


async def measure(blocks: int, calls: int, prefix: str) -> dict[str, list[float]]:
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
    loop = asyncio.get_running_loop()
    pool = azure_functions_runtime.get_threadpool_executor()
    for name, path in ROUTES:
        response = bench.call(name, path, auth)
        assert response.status_code == 200, response.get_body()
    results: dict[str, list[float]] = {RAW: [], **{path: [] for _, path in ROUTES}}
    for block in range(blocks + 1):  # block 0 warms up and is not counted
        cost = await loop.run_in_executor(pool, per_call_us, calls, raw_get(client, key))
        if block:
            results[RAW].append(cost)
        for name, path in ROUTES:
            cost = await loop.run_in_executor(pool, functions_us, bench, name, path, auth, calls)
            if block:
                results[path].append(cost)
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
    raw = statistics.median(results[RAW])
    print("| call | µs/request (median) | ratio to the raw GET |")
    print("|---|---:|---:|")
    print(f"| {RAW} | {raw:.0f} | 1.00× |")  # noqa: RUF001
    for _, path in ROUTES:
        cost = statistics.median(results[path])
        print(f"| GET {path} | {cost:.0f} | {cost / raw:.2f}× |")  # noqa: RUF001


if __name__ == "__main__":
    main()
