"""The runbook's promise under load: Redis stops, freezes, pauses or restarts and no call fails.

Every load is bounded in threads, calls and seconds; every server is private, on a free port.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from drills.workers import Workers
from shared.cache import Cache, redis_options
from tests.support.redis_server import RedisServer, cache_settings

pytestmark = pytest.mark.redis

REPO = Path(__file__).resolve().parents[1]
PROBE_INTERVAL = 0.25
SOCKET_TIMEOUT = 0.25


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@dataclass
class Call:
    seconds: float
    mode_before: str
    mode_after: str


class Load(Workers):
    """Threads calling the cache as request handlers would, until stopped or bounded out."""

    def __init__(
        self, cache: Cache, threads: int = 6, calls_per_thread: int = 20_000, seconds: float = 20.0
    ) -> None:
        super().__init__(threads, join_timeout=10)
        self.cache = cache
        self.calls_per_thread = calls_per_thread
        self.seconds = seconds
        self.calls: list[Call] = []
        self.failures: list[BaseException] = []

    def work(self, index: int) -> None:
        rng = random.Random(index)
        deadline = time.monotonic() + self.seconds
        cache = self.cache
        for n in range(self.calls_per_thread):
            if self.stopping or time.monotonic() > deadline:
                return
            key = f"k{rng.randrange(50)}"
            roll = rng.random()
            before = cache.mode
            started = time.perf_counter()
            try:
                if roll < 0.6:
                    cache.get(key)
                elif roll < 0.8:
                    cache.set(key, {"n": n, "payload": "x" * 200}, tier="short")
                elif roll < 0.9:
                    cache.get_or_set(key, lambda: {"n": n}, tier="short")
                elif roll < 0.98:
                    cache.delete(key)
                else:
                    cache.invalidate("k1*")
            except BaseException as exc:
                self.failures.append(exc)
            self.calls.append(Call(time.perf_counter() - started, before, cache.mode))
            time.sleep(0.0005)  # requests, not a CPU hog: leave the GIL to the others


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Poll until ``condition()``; return when it became true (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < deadline, "timed out"
        time.sleep(0.002)
    return time.perf_counter()


def outage(server: RedisServer, kind: str) -> tuple[Callable[[], None], Callable[[], float]]:
    """How to break Redis, and how to bring it back (returning the moment it is back)."""
    if kind == "pause":
        pause_ends: list[float] = []

        def pause() -> None:
            server.pause(1500)
            pause_ends.append(time.perf_counter() + 1.5)

        def pause_over() -> float:
            time.sleep(max(0.0, pause_ends[0] - time.perf_counter()))
            return pause_ends[0]

        return pause, pause_over

    break_redis, fix_redis = {
        "shutdown": (server.stop, server.start),
        "kill": (server.kill, server.start),
        "freeze": (server.freeze, server.thaw),
    }[kind]

    def restore() -> float:
        fix_redis()
        return time.perf_counter()

    return break_redis, restore


def build_cache(server: RedisServer, path: str) -> Cache:
    settings = cache_settings(server.url)
    assert settings.cache_socket_timeout_ms / 1000 == SOCKET_TIMEOUT
    if path == "from_url":
        return Cache(settings)  # the production path: Redis.from_url(REDIS_URL, ...)
    client = redis.Redis(host="127.0.0.1", port=server.port, **redis_options(settings))
    return Cache(settings, client=client)


@pytest.mark.parametrize("path", ["from_url", "Redis"])
@pytest.mark.parametrize("kind", ["shutdown", "kill", "freeze", "pause"])
def test_an_outage_under_load_fails_no_call_and_recovers(
    server: RedisServer, kind: str, path: str
) -> None:
    cache = build_cache(server, path)
    break_redis, restore_redis = outage(server, kind)
    with Load(cache) as load:
        time.sleep(0.3)
        assert cache.mode == "redis"
        break_redis()
        wait_for(lambda: cache.mode == "memory", 2.0)
        time.sleep(0.8)
        back = restore_redis()
        recovered = wait_for(lambda: cache.mode == "redis", 5.0)
        time.sleep(0.3)
    stats = cache.stats()
    cache.close()

    assert load.failures == []
    assert stats["fallback_activations"]["process"] == 1
    assert stats["reconnects"]["process"] == 1
    assert recovered - back <= 2 * PROBE_INTERVAL
    in_fallback = sorted(c.seconds for c in load.calls if c.mode_before == c.mode_after == "memory")
    in_redis = [c.seconds for c in load.calls if c.mode_before == c.mode_after == "redis"]
    assert len(in_fallback) > 300
    assert len(in_redis) > 300
    # Once open, no call waits on the network: even the slowest is well under one socket
    # timeout (its tail is GIL scheduling and garbage collection), and 99 % take under 2 ms.
    assert in_fallback[-1] < SOCKET_TIMEOUT * 0.8
    assert in_fallback[int(len(in_fallback) * 0.99)] <= 0.002
    assert statistics.median(in_fallback) <= statistics.median(in_redis)


def test_after_the_breaker_opens_no_call_touches_the_network(server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url))
    cache.set("k", 1)
    server.freeze()
    started = time.perf_counter()
    assert cache.get("k") is None  # this one waits out the socket timeout, then falls back
    first = time.perf_counter() - started
    started = time.perf_counter()
    for n in range(1000):
        cache.set(f"k{n}", n)
        assert cache.get(f"k{n}") == n
    rest = time.perf_counter() - started
    cache.close()
    assert SOCKET_TIMEOUT * 0.9 <= first < SOCKET_TIMEOUT * 2
    assert rest < 0.2  # 2000 calls; a single network wait would be 0.25 s


@pytest.mark.parametrize("change", ["delete", "set", "invalidate", "clear"])
def test_changes_made_during_a_freeze_are_not_undone_after_it(
    server: RedisServer, change: str
) -> None:
    control = server.client()
    control.set("foreign", b"kept")
    cache = Cache(cache_settings(server.url))
    for key in ("user:1", "user:2", "other"):
        cache.set(key, f"old {key}")
    server.freeze()
    # Trip the breaker with a read first: a write that times out may still reach Redis when it
    # thaws (its bytes are in the socket buffer), which would hide a missing replay.
    assert cache.get("other") is None
    assert cache.mode == "memory"
    if change == "delete":
        assert cache.delete("user:1") == 0  # the local store never had it
    elif change == "set":
        cache.set("user:1", "new")
        assert cache.get("user:1") == "new"
    elif change == "invalidate":
        assert cache.invalidate("user:*") == 0
    else:
        assert cache.clear() == 0
    assert cache.get("user:1") in (None, "new")
    server.thaw()
    wait_for(lambda: cache.mode == "redis", 2 * PROBE_INTERVAL + 0.5)

    remaining = {key: cache.get(key) for key in ("user:1", "user:2", "other")}
    cache.close()
    expected = {
        "delete": {"user:1": None, "user:2": "old user:2", "other": "old other"},
        # the new value lived in the emptied local store; the old one must not come back
        "set": {"user:1": None, "user:2": "old user:2", "other": "old other"},
        "invalidate": {"user:1": None, "user:2": None, "other": "old other"},
        "clear": {"user:1": None, "user:2": None, "other": None},
    }[change]
    assert remaining == expected
    assert control.get("foreign") == b"kept"


def test_too_many_outage_changes_clear_the_namespace_on_recovery(server: RedisServer) -> None:
    # Past CACHE_LOCAL_MAXSIZE recorded keys the list gives way to a clear: safe, and bounded.
    cache = Cache(cache_settings(server.url, {"CACHE_LOCAL_MAXSIZE": "5"}))
    for n in range(10):
        cache.set(f"k{n}", n)
    cache.set("untouched", 1)
    server.freeze()
    cache.get("untouched")  # trips the breaker
    cache.delete(*[f"k{n}" for n in range(6)])
    server.thaw()
    wait_for(lambda: cache.mode == "redis", 2 * PROBE_INTERVAL + 0.5)
    assert cache.get("untouched") is None
    assert cache.stats()["keys"] == {"cluster": 0}
    cache.close()


def test_the_local_store_is_emptied_when_redis_returns(server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url))
    server.stop()
    cache.set("during", "outage")
    assert cache.stats()["local_size"] == {"process": 1}
    server.start()
    wait_for(lambda: cache.mode == "redis", 2 * PROBE_INTERVAL + 0.5)
    assert cache.stats()["local_size"] == {"process": 0}
    assert cache.get("during") is None
    cache.close()


CHILD = """
import json, sys
from shared.cache import get_cache
cache = get_cache()
for line in sys.stdin:
    op, key = line.split()
    if op == "get":
        result = cache.get(key)
    elif op == "set":
        result = cache.set(key, {"from": "child"})
    else:
        result = cache.delete(key)
    print(json.dumps([cache.mode, result]), flush=True)
"""


def test_an_invalidation_in_one_process_is_seen_by_the_next_read_in_another(
    server: RedisServer,
) -> None:
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "CACHE_PREFIX": "shared-ns",
        "ENVIRONMENT": "test",
        "PYTHONPATH": str(REPO),
    }
    here = Cache(cache_settings(server.url, {"CACHE_PREFIX": "shared-ns"}))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=REPO, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None
    assert child.stdout is not None

    def ask(command: str) -> object:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(command + "\n")
        child.stdin.flush()
        mode, result = json.loads(child.stdout.readline())
        assert mode == "redis"
        return result

    try:
        here.set("user:1", {"from": "parent"})
        assert ask("get user:1") == {"from": "parent"}
        assert here.invalidate("user:*") == 1
        assert ask("get user:1") is None
        ask("set user:2")
        assert here.get("user:2") == {"from": "child"}
        assert ask("delete user:2") == 1
        assert here.get("user:2") is None
    finally:
        child.stdin.close()
        child.wait(10)
        here.close()


def test_an_eviction_in_memory_mode_reaches_a_redis_another_instance_is_back_on(
    server: RedisServer,
) -> None:
    """The scale drill's finding: Redis restarts, one instance's probe finds it first and caches
    an item there; another, still in memory mode, writes that item. Its eviction must reach
    Redis at once, not when its own probe comes round."""
    slow = Cache(cache_settings(server.url, {"CACHE_PROBE_INTERVAL_SECONDS": "60"}))
    back = Cache(cache_settings(server.url))
    server.stop()
    slow.get("item:1")
    assert slow.mode == "memory"
    server.start()
    wait_for(lambda: back.mode == "redis", 2 * PROBE_INTERVAL + 0.5)
    back.set("item:1", "before the write")
    back.set("item:2", "before the write")
    slow.delete("item:2")  # a plain delete leaves Redis alone in memory mode...
    assert back.get("item:2") == "before the write"
    slow.evict("item:1")  # ...a write's eviction does not
    assert slow.mode == "memory"
    assert back.get("item:1") is None
    slow.close()
    back.close()


def test_a_value_stored_with_no_local_lifetime_is_not_kept_while_redis_is_away(
    server: RedisServer,
) -> None:
    cache = Cache(cache_settings(server.url))
    server.stop()
    cache.set("item:1", "read during the outage", local_ttl=0)
    cache.set("user:1", "auth record", local_ttl=2)
    assert cache.mode == "memory"
    assert cache.get("item:1") is None
    assert cache.get("user:1") == "auth record"
    cache.close()
