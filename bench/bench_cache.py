"""Cache benchmarks, side by side in one run, reported as ratios.

- cache-hit ``Cache.get`` against raw redis-py ``GET`` + ``json.loads`` of the same 1 KB value
  (goal: at most 1.2x);
- ``Cache.get`` in fallback mode, breaker open (goal: at most 20 us), with the memory-only cache
  (no REDIS_URL) beside it.

Variants run interleaved, round after round, and each figure is the median of its rounds, so
drift on the machine hits every variant alike. Starts its own redis-server on a free loopback
port. Run from the repository root:

    .venv/bin/python -m bench.bench_cache [--calls 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import redis

from shared.cache import Cache
from tests.support.redis_server import RedisServer, cache_settings
from tests.support.services import free_port

VALUE = {
    "id": "6f1c1f3e-0d1b-4c57-9d8e-2a6b0f3c9e11",
    "email": "someone@example.com",
    "full_name": "Some One",
    "is_active": True,
    "items": [{"id": n, "title": f"item {n}", "description": "x" * 24} for n in range(12)],
}


def per_call_us(call: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    payload = json.dumps(VALUE).encode()
    with RedisServer() as server:
        raw_client = redis.Redis.from_url(server.url)  # redis-py's defaults, as anyone would
        raw_client.set("raw", payload)
        cached = Cache(cache_settings(server.url))
        cached.set("k", VALUE)
        # Fallback: Redis configured but unreachable, so the first call opens the breaker.
        fallback = Cache(cache_settings(f"redis://127.0.0.1:{free_port()}/0"))
        fallback.set("k", VALUE)
        assert fallback.mode == "memory"
        memory = Cache(cache_settings())
        memory.set("k", VALUE)

        def raw_get() -> object:
            data = raw_client.get("raw")
            assert isinstance(data, bytes)
            return json.loads(data)

        variants: dict[str, Callable[[], object]] = {
            "raw redis-py GET + json.loads": raw_get,
            "Cache.get, hit (redis mode)": lambda: cached.get("k"),
            "Cache.get, fallback mode": lambda: fallback.get("k"),
            "Cache.get, memory only": lambda: memory.get("k"),
        }
        for call in variants.values():
            assert call() == json.loads(payload)
            per_call_us(call, args.calls // 10)  # warm-up: connections, caches
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, call in variants.items():
                samples[name].append(per_call_us(call, args.calls))
        assert cached.mode == "redis"
        assert fallback.mode == "memory"
        for cache in (cached, fallback, memory):
            cache.close()
        version = (
            subprocess.run([server.binary, "--version"], capture_output=True, text=True, check=True)
            .stdout.split()[2]
            .removeprefix("v=")
        )

    medians = {name: statistics.median(values) for name, values in samples.items()}
    raw = medians["raw redis-py GET + json.loads"]
    print(
        f"Python {platform.python_version()}, redis-py {redis.__version__}, "
        f"redis-server {version}; value {len(payload)} bytes; "
        f"{args.rounds} rounds x {args.calls} calls, median per call"
    )
    print("| variant | us/call | vs raw GET + json.loads | goal |")
    print("|---|---:|---:|---|")
    goals = {
        "Cache.get, hit (redis mode)": "<= 1.2x",
        "Cache.get, fallback mode": "<= 20 us",
    }
    for name, us in medians.items():
        print(f"| {name} | {us:.1f} | {us / raw:.3f}x | {goals.get(name, '')} |")


if __name__ == "__main__":
    main()
