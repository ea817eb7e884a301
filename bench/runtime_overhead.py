"""What the worker runtime path costs per request, beside the handler's own cost.

In one process, on a fresh migrated PostgreSQL database with Redis (the default setup), the app
is started on ``azure_functions_runtime`` exactly as devhost starts it, a bench user is signed in
and given 20 items, and then each read route is timed two ways, in alternating blocks:

- **handler**: the function's own code, called directly with an ``azure.functions.HttpRequest``
  and the runtime's ``context`` (what the app itself costs): a sync one on a thread of the
  runtime's pool, an async one (the probes) awaited on the loop, as the runtime runs each;
- **runtime path**: devhost's host side and the runtime together, as for every request devhost
  serves: build the ``RpcHttp``/``InvocationRequest`` (devhost.messages), ``invocation_request``
  (binding conversion into ``HttpRequest``, the thread pool hop for a sync function, the
  response back into ``RpcHttp``), and the response back into status, headers and body.

The difference is what the real runtime path adds per request; devhost's own share of it (the
message building and reading alone, timed without invoking) is shown beside it. Medians of
``--blocks`` blocks of ``--calls`` sequential calls each. No HTTP server is involved (the HTTP
cost is in ``bench.side_by_side``). Run from the repository root (needs PostgreSQL and Redis):

    .venv/bin/python -m bench.runtime_overhead [--blocks 15] [--calls 200]
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
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import azure_functions_runtime
import uvloop
from azure_functions_runtime.bindings.context import get_context

from bench.api_throughput import clear_namespace
from devhost import messages
from devhost.runtime import FunctionsRuntime
from shared import config
from tests.conftest import (
    REDIS_URL,
    SUPERUSER,
    SUPERUSER_PASSWORD,
    app_env,
    create_superuser,
    migrate,
)
from tests.support.services import temporary_database

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://127.0.0.1:7071"
ROUTES = (
    ("liveness", "/healthz"),
    ("read_user_me", "/api/v1/users/me"),
    ("read_items", "/api/v1/items/"),
)


class Bench:
    def __init__(self, runtime: FunctionsRuntime, functions: list[Any]) -> None:
        self.runtime = runtime
        self.ids = {function.name: function.function_id for function in functions}
        # The very functions the runtime calls, from its registry (indexing the app a second
        # time would register its blueprints twice).
        registry = azure_functions_runtime.handle_event._functions
        self.handlers = {
            function.name: registry.get_function(function.function_id).func
            for function in functions
        }

    def request(
        self, name: str, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Any:
        """The InvocationRequest devhost builds for this HTTP request."""
        protos = self.runtime.protos
        query = path.partition("?")[2].encode()
        data = messages.http_data(protos, method, BASE + path, headers, query, {}, body)
        return messages.invocation(
            protos,
            self.ids[name],
            str(uuid.uuid4()),
            "req",
            data,
            messages.trace_context(protos, headers),
        )

    def messages_only(self, name: str, path: str, headers: dict[str, str], answer: Any) -> None:
        """devhost's side alone: build the request, read an earlier response."""
        self.request(name, "GET", path, headers)
        messages.http_response(answer.return_value)

    async def through_runtime(
        self, name: str, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        response = await self.runtime.invoke(self.request(name, method, path, headers, body))
        failure = self.runtime.failure(response)
        assert failure is None, failure
        status, _, content = messages.http_response(response.return_value)
        return status, content

    def arguments(self, name: str, path: str, headers: dict[str, str]) -> tuple[Any, Any]:
        """The request and context the runtime passes to the function for this request."""
        request = func.HttpRequest("GET", BASE + path, headers=headers, body=b"")
        protos = self.runtime.protos
        invocation = protos.InvocationRequest(
            invocation_id=str(uuid.uuid4()),
            trace_context=protos.RpcTraceContext(trace_parent=messages.new_trace_parent()),
        )
        return request, get_context(invocation, name, str(ROOT))

    def call(self, name: str, path: str, headers: dict[str, str]) -> Any:
        """The function's own call: its response, or for an async function its coroutine."""
        return self.handlers[name](*self.arguments(name, path, headers))

    def direct(self, name: str, path: str, headers: dict[str, str]) -> int:
        return int(self.call(name, path, headers).status_code)

    async def direct_async(self, name: str, path: str, headers: dict[str, str]) -> int:
        return int((await self.call(name, path, headers)).status_code)


def per_call_us(calls: int, call: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - started) / calls / 1e3


async def seed(bench: Bench) -> dict[str, str]:
    form = urlencode({"username": SUPERUSER, "password": SUPERUSER_PASSWORD}).encode()
    headers = {
        "host": "127.0.0.1:7071",
        "content-type": "application/x-www-form-urlencoded",
        "content-length": str(len(form)),
    }
    status, content = await bench.through_runtime(
        "login_access_token", "POST", "/api/v1/login/access-token", headers, form
    )
    assert status == 200, content
    token = json.loads(content)["access_token"]
    auth = {"host": "127.0.0.1:7071", "authorization": f"Bearer {token}"}
    for number in range(20):
        body = json.dumps({"title": f"item {number}", "description": "bench"}).encode()
        create = {**auth, "content-type": "application/json", "content-length": str(len(body))}
        status, content = await bench.through_runtime(
            "create_item", "POST", "/api/v1/items/", create, body
        )
        assert status == 200, content
    return auth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=15, help="alternating blocks per route")
    parser.add_argument("--calls", type=int, default=200, help="sequential calls per block")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with temporary_database("stratus_overhead") as database:
        migrate(database)
        env = app_env(database, REDIS_URL, CACHE_PREFIX=f"stratus-ovh-{uuid.uuid4().hex[:8]}")
        create_superuser(env)
        os.environ.update(env)
        config.get_settings.cache_clear()  # read before the environment was set
        sys.path.insert(0, str(ROOT))
        try:
            # uvloop, as under devhost (uvicorn's loop); sync functions hop to the pool and back.
            results = asyncio.run(
                measure(args.blocks, args.calls), loop_factory=uvloop.new_event_loop
            )
        finally:
            clear_namespace(env["CACHE_PREFIX"])
    report(results, args)


async def measure(blocks: int, calls: int) -> dict[str, tuple[list[float], ...]]:
    runtime = FunctionsRuntime()
    functions = await runtime.start(str(ROOT))
    for function in functions:
        await runtime.load(function)
    bench = Bench(runtime, functions)
    auth = await seed(bench)
    loop = asyncio.get_running_loop()
    results: dict[str, tuple[list[float], ...]] = {}
    for name, path in ROUTES:
        headers = {"host": "127.0.0.1:7071"} if name == "liveness" else auth
        direct: list[float] = []
        through: list[float] = []
        host_side: list[float] = []
        invocation = await bench.runtime.invoke(bench.request(name, "GET", path, headers))
        asynchronous = inspect.iscoroutinefunction(bench.handlers[name])
        for block in range(blocks + 1):  # block 0 warms both paths up and is not counted
            started = time.perf_counter_ns()
            for _ in range(calls):
                await bench.through_runtime(name, "GET", path, headers)
            runtime_us = (time.perf_counter_ns() - started) / calls / 1e3
            if asynchronous:  # the runtime awaits it on this loop: so does the measure
                started = time.perf_counter_ns()
                for _ in range(calls):
                    assert await bench.direct_async(name, path, headers) == 200
                handler_us = (time.perf_counter_ns() - started) / calls / 1e3
            else:
                # The handler runs on a thread of the runtime's pool under the runtime too; here
                # a whole block runs on one of them, so both paths see the same threads and
                # caches.
                handler_us = await loop.run_in_executor(
                    azure_functions_runtime.get_threadpool_executor(),
                    per_call_us,
                    calls,
                    lambda n=name, p=path, h=headers: bench.direct(n, p, h),
                )
            messages_us = per_call_us(
                calls, functools.partial(bench.messages_only, name, path, headers, invocation)
            )
            if block:
                through.append(runtime_us)
                direct.append(handler_us)
                host_side.append(messages_us)
        results[path] = (direct, through, host_side)
    runtime.stop()
    return results


def report(results: dict[str, tuple[list[float], ...]], args: argparse.Namespace) -> None:
    print(
        f"Python {platform.python_version()}; azure-functions-runtime "
        f"{metadata.version('azure-functions-runtime')}, azure-functions "
        f"{metadata.version('azure-functions')}, protobuf {metadata.version('protobuf')}; "
        f"{os.cpu_count()} CPUs; load average (1 min) {os.getloadavg()[0]:.2f}"
    )
    command = ".venv/bin/python -m bench.runtime_overhead"
    print(f"Command: {command} --blocks {args.blocks} --calls {args.calls}")
    print()
    print(
        "| route | handler alone (µs/request) | through the runtime path | added by the path "
        "| of which devhost's messages |"
    )
    print("|---|---:|---:|---:|---:|")
    for path, (direct, through, host_side) in results.items():
        handler, total = statistics.median(direct), statistics.median(through)
        own = statistics.median(host_side)
        print(f"| GET {path} | {handler:.0f} | {total:.0f} | {total - handler:+.0f} | {own:.0f} |")


if __name__ == "__main__":
    main()
