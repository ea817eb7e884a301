"""The cache's contract, in memory mode and against a private redis-server alike."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from drills.tcp_proxy import TcpProxy
from shared.cache import (
    Cache,
    Lookups,
    get_cache,
    redis_options,
    reset_cache,
    tentative_lookups,
)
from shared.config import CACHE_TIERS, load_settings
from tests.support.redis_server import RedisServer, cache_settings
from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[1]
TIER_SECONDS = {"short": 61, "medium": 302, "long": 3603, "daily": 86404, "session": 1805}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    """The same tests in both modes: behaviour must not depend on where the values live."""
    if request.param == "memory":
        cache = Cache(cache_settings())
        yield cache
        cache.close()
        return
    with RedisServer() as server:
        cache = Cache(cache_settings(server.url))
        yield cache
        cache.close()
        assert cache.mode == "redis"  # no test here may pass by falling back


class Exploit:
    """Unpickling this creates ``marker``: the code execution a pickle cache would allow."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def test_importing_the_cache_loads_neither_redis_nor_cachetools() -> None:
    code = "import sys, shared.cache; print(sorted({'redis', 'cachetools'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.redis
def test_construction_does_no_network_io(server: RedisServer) -> None:
    server.freeze()  # any network call would now hang until its timeout
    started = time.perf_counter()
    cache = Cache(cache_settings(server.url))
    elapsed = time.perf_counter() - started
    cache.close()
    assert elapsed < 0.1
    assert cache.mode == "redis"


def test_without_redis_url_the_cache_runs_in_memory() -> None:
    cache = Cache(cache_settings())
    cache.set("a", 1)
    assert cache.get("a") == 1
    assert cache.mode == "memory"
    assert cache.reconnect() is False
    assert cache.ping() is True  # nothing configured is nothing missing
    stats = cache.stats()
    assert stats["redis_configured"] is False
    assert stats["hits"] == {"process": 1, "cluster": None}
    assert stats["keys"] == {"cluster": None}
    assert stats["local_size"] == {"process": 1}
    cache.close()


def test_get_cache_is_one_cache_per_process_until_reset() -> None:
    reset_cache()
    try:
        first = get_cache()
        assert get_cache() is first
        reset_cache()
        assert get_cache() is not first
    finally:
        reset_cache()


def test_values_round_trip_as_json_with_datetime_date_and_uuid(cache: Cache) -> None:
    value = {
        "when": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        "naive": datetime(2024, 5, 6, 7, 8, 9),
        "day": date(2024, 5, 6),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "items": [1, 2.5, "x", True, None, {"nested": ["é", "🙂"]}],
        "tuple": (1, 2),
    }
    cache.set("v", value)
    expected = {**value, "tuple": [1, 2]}  # JSON has no tuples, in either mode
    assert cache.get("v") == expected
    cache.set("ids", [uuid.UUID(int=1), uuid.UUID(int=2)])
    assert cache.get("ids") == [uuid.UUID(int=1), uuid.UUID(int=2)]


def test_a_returned_value_is_a_copy(cache: Cache) -> None:
    cache.set("list", [1])
    cache.get("list").append(2)
    assert cache.get("list") == [1]


def test_a_stored_none_is_a_hit_distinct_from_a_miss(cache: Cache) -> None:
    missing = object()
    cache.set("none", None)
    assert cache.get("none", missing) is None
    assert cache.get("absent", missing) is missing
    assert cache.get("absent") is None


def test_values_that_are_not_json_are_refused_and_not_stored(cache: Cache) -> None:
    with pytest.raises(TypeError, match="set cannot be cached"):
        cache.set("bad", {1, 2})
    assert cache.get("bad") is None


def test_unknown_tier_is_refused(cache: Cache) -> None:
    with pytest.raises(ValueError, match="unknown cache tier 'forever'"):
        cache.set("k", 1, tier="forever")


def test_delete_counts_the_keys_that_existed(cache: Cache) -> None:
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.delete() == 0
    assert cache.delete("a", "b", "c", "a") == 2
    assert cache.get("a") is None
    assert cache.delete("a") == 0


def test_clear_empties_the_namespace(cache: Cache) -> None:
    for n in range(1200):  # more than one SCAN batch and one UNLINK batch
        cache.set(f"k{n}", n)
    assert cache.clear() == 1200
    assert cache.get("k1") is None
    assert cache.clear() == 0


def test_get_or_set_loads_on_a_miss_only(cache: Cache) -> None:
    calls: list[int] = []

    def loader() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    assert cache.get_or_set("k", loader, tier="short") == {"n": 1}
    assert cache.get_or_set("k", loader, tier="short") == {"n": 1}
    assert len(calls) == 1


def test_get_or_set_calls_the_loader_once_for_50_concurrent_misses(cache: Cache) -> None:
    calls: list[str] = []
    barrier = threading.Barrier(50)
    results: list[object] = []

    def loader() -> str:
        calls.append(threading.current_thread().name)
        time.sleep(0.5)  # long enough for every thread to miss while the load is running
        return "loaded"

    def worker() -> None:
        barrier.wait()
        results.append(cache.get_or_set("hot", loader))

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1
    assert results == ["loaded"] * 50
    assert cache.stats()["misses"]["process"] == 50  # every caller did miss


def test_get_or_set_shares_a_loader_error_and_caches_nothing(cache: Cache) -> None:
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []
    calls: list[int] = []

    def failing() -> str:
        calls.append(1)
        time.sleep(0.1)
        raise LookupError("database said no")

    def worker() -> None:
        barrier.wait()
        try:
            cache.get_or_set("k", failing)
        except LookupError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1
    assert len(errors) == 10
    assert cache.get_or_set("k", lambda: "second try") == "second try"


def test_memory_entries_expire_with_their_tier() -> None:
    cache = Cache(cache_settings(env={"CACHE_TTL_SHORT": "1", "CACHE_TTL_JITTER": "0"}))
    cache.set("brief", 1, tier="short")
    cache.set("lasting", 2, tier="long")
    time.sleep(1.05)
    assert cache.get("brief") is None
    assert cache.get("lasting") == 2
    assert cache.stats()["local_size"] == {"process": 1}
    cache.close()


def test_memory_store_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = Cache(cache_settings(env={"CACHE_LOCAL_MAXSIZE": "3"}))
    for key in "abc":
        cache.set(key, key)
    cache.get("a")
    cache.set("d", "d")
    assert [cache.get(key) for key in "abcd"] == ["a", None, "c", "d"]
    cache.close()


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5", str(30 * 86400 + 1)])
@pytest.mark.parametrize("tier", CACHE_TIERS)
def test_invalid_ttl_settings_are_rejected(tier: str, value: str) -> None:
    name = f"CACHE_TTL_{tier.upper()}"
    settings = load_settings({"ENVIRONMENT": "test", name: value})
    assert any(error.startswith(name) for error in settings.errors)
    assert settings.cache_ttl.for_tier(tier) == load_settings({}).cache_ttl.for_tier(tier)


@pytest.mark.redis
def test_ttl_follows_the_tier_with_at_most_the_configured_jitter(server: RedisServer) -> None:
    env = {f"CACHE_TTL_{tier.upper()}": str(s) for tier, s in TIER_SECONDS.items()}
    cache = Cache(cache_settings(server.url, {**env, "CACHE_TTL_JITTER": "0.1"}))
    control = server.client()
    for tier, seconds in [*TIER_SECONDS.items(), ("default", 300)]:
        cache.set(tier, tier, tier=tier)
        pttl = control.pttl(f"stratus:{tier}")
        assert seconds * 900 - 50 <= pttl <= seconds * 1000, tier
    cache.close()


@pytest.mark.redis
def test_jitter_spreads_expiries_below_the_tier_ttl(server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url, {"CACHE_TTL_JITTER": "0.1"}))
    control = server.client()
    for n in range(200):
        cache.set(f"k{n}", n, tier="short")
    pttls = [control.pttl(f"stratus:k{n}") for n in range(200)]
    assert min(pttls) >= 54_000 - 100
    assert max(pttls) <= 60_000
    assert max(pttls) - min(pttls) > 4_000  # spread over most of the 6 s window
    assert len(set(pttls)) > 150
    cache.close()


@pytest.mark.redis
def test_without_jitter_the_ttl_is_exact(server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url, {"CACHE_TTL_JITTER": "0"}))
    cache.set("k", 1, tier="medium")
    assert 300_000 - 50 <= server.client().pttl("stratus:k") <= 300_000
    cache.close()


@pytest.mark.redis
def test_a_planted_pickle_is_a_miss_and_never_runs(server: RedisServer, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Exploit(marker))
    control = server.client()
    control.set("stratus:evil", payload)
    control.set("stratus:text", b"not json at all")
    cache = Cache(cache_settings(server.url))
    assert cache.get("evil", "default") == "default"
    assert cache.get("text") is None
    assert cache.get_or_set("evil", lambda: "fresh") == "fresh"  # the loader replaces it
    assert cache.get("evil") == "fresh"
    stats = cache.stats()
    assert stats["invalid"]["process"] == stats["misses"]["process"] == 3
    cache.close()
    assert not marker.exists()
    pickle.loads(payload)  # the payload is live: this is what the cache must never do
    assert marker.exists()


@pytest.mark.redis
def test_clear_and_invalidate_stay_in_the_namespace_without_keys_or_flush() -> None:
    renamed = ['rename-command KEYS ""', 'rename-command FLUSHDB ""', 'rename-command FLUSHALL ""']
    with RedisServer(renamed) as server:
        control = server.client()
        with pytest.raises(redis.ResponseError):
            control.keys("*")  # the server really has no KEYS
        foreign = {"other:a": b"1", "stratusx:a": b"2", "stratus": b"3", "xstratus:a": b"4"}
        for name, value in foreign.items():
            control.set(name, value)
        mine = Cache(cache_settings(server.url))
        theirs = Cache(cache_settings(server.url, {"CACHE_PREFIX": "other"}))
        for key in ("a", "b", "user:1"):
            mine.set(key, key)
        theirs.set("b", "theirs")
        assert mine.invalidate("user:*") == 1
        assert mine.clear() == 2
        assert mine.invalidate("*") == 0
        assert theirs.get("b") == "theirs"
        assert {name: control.get(name) for name in foreign} == foreign
        assert mine.mode == theirs.mode == "redis"
        mine.close()
        theirs.close()


@pytest.mark.parametrize("path", ["Redis(...)", "Redis.from_url(...)"])
def test_both_client_construction_paths_fail_fast(path: str) -> None:
    port = free_port()  # nothing listens there
    url = f"redis://127.0.0.1:{port}/0"
    settings = cache_settings(url)
    options = redis_options(settings)
    if path == "Redis(...)":
        client = redis.Redis(host="127.0.0.1", port=port, **options)
    else:
        client = redis.Redis.from_url(url, **options)
    assert client.get_connection_kwargs()["retry"].get_retries() == 0
    assert client.get_connection_kwargs()["socket_timeout"] == 0.25
    cache = Cache(settings, client=client)
    started = time.perf_counter()
    assert cache.get("k", "fallback") == "fallback"
    cache.set("k", "local")
    assert cache.get("k") == "local"
    assert time.perf_counter() - started < 0.05
    assert cache.mode == "memory"
    cache.close()


def test_redis_py_defaults_differ_by_construction_path() -> None:
    """Why ``redis_options`` spells everything out (redis-py 8.1)."""
    assert redis.Redis().get_connection_kwargs()["retry"].get_retries() == 10
    assert "retry" not in redis.Redis.from_url("redis://127.0.0.1:1/0").get_connection_kwargs()


@pytest.mark.redis
def test_stats_are_exact_for_a_scripted_sequence(server: RedisServer) -> None:
    # A probe interval of an hour: nothing happens in the background, reconnect() is manual.
    settings = cache_settings(server.url, {"CACHE_PROBE_INTERVAL_SECONDS": "3600"})
    cache = Cache(settings)
    cache.set("a", 1)
    assert cache.get("a") == 1  # hit
    assert cache.get("b") is None  # miss
    assert cache.get_or_set("c", lambda: 3) == 3  # miss
    assert cache.get("c") == 3  # hit
    server.client().set("stratus:evil", b"\x80\x04K\x01.")
    assert cache.get("evil") is None  # miss, invalid

    stats = cache.stats()
    assert stats["mode"] == "redis"
    assert _figures(stats, "process") == {
        "hits": 2,
        "misses": 3,
        "errors": 0,
        "invalid": 1,
        "fallback_activations": 0,
        "reconnects": 0,
        "hit_rate": 0.4,
    }
    assert _figures(stats, "cluster") == _figures(stats, "process")
    assert stats["keys"] == {"cluster": 3}
    assert stats["local_size"] == {"process": 0}
    assert stats["last_fallback_at"] == stats["last_reconnect_at"] == {"process": None}

    server.stop()
    assert cache.get("a") is None  # error, fallback, miss
    assert cache.get("a") is None  # miss: no second error, the breaker is open
    cache.set("d", 4)
    assert cache.get("d") == 4  # hit
    assert cache.reconnect() is False  # still down: not an error, nothing called Redis
    stats = cache.stats()
    assert stats["mode"] == "memory"
    assert _figures(stats, "process") == {
        "hits": 3,
        "misses": 5,
        "errors": 1,
        "invalid": 1,
        "fallback_activations": 1,
        "reconnects": 0,
        "hit_rate": 0.375,
    }
    assert set(_figures(stats, "cluster").values()) == {None}
    assert stats["keys"] == {"cluster": None}
    assert stats["local_size"] == {"process": 1}
    assert stats["last_fallback_at"]["process"] is not None

    server.start()
    assert cache.reconnect() is True
    other = Cache(settings)  # a second process sharing the namespace
    assert other.get("a") is None
    other.stats()  # flushes its counts to Redis
    stats = cache.stats()
    assert stats["mode"] == "redis"
    assert stats["local_size"] == {"process": 0}
    assert stats["last_reconnect_at"]["process"] is not None
    # Cluster counters live in Redis, so the restarted (empty) server holds only what was
    # counted since this cache's last flush (the first stats() above), plus the other's miss.
    assert stats["misses"] == {"process": 5, "cluster": 3}
    assert stats["hits"] == {"process": 3, "cluster": 1}
    assert stats["errors"] == {"process": 1, "cluster": 1}
    assert stats["fallback_activations"] == {"process": 1, "cluster": 1}
    assert stats["reconnects"] == {"process": 1, "cluster": 1}
    cache.close()
    other.close()


@pytest.mark.redis
def test_stats_hold_no_values_urls_passwords_or_error_text() -> None:
    with RedisServer(password="hunter2-secret") as server:
        cache = Cache(cache_settings(server.url, {"CACHE_PROBE_INTERVAL_SECONDS": "3600"}))
        cache.set("user:1", {"email": "alice@example.com"})
        assert cache.get("user:1") == {"email": "alice@example.com"}
        assert cache.mode == "redis"  # authenticated
        server.kill()
        cache.get("user:1")
        text = json.dumps(cache.stats())
        cache.close()
    for secret in ("hunter2", "127.0.0.1", "redis://", "alice", "user:1", "Error", "refused"):
        assert secret not in text


@pytest.mark.redis
def test_reconnect_and_ping_report_and_restore_redis_mode(server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url, {"CACHE_PROBE_INTERVAL_SECONDS": "3600"}))
    assert cache.ping() is True
    server.stop()
    assert cache.ping() is False  # the readiness check finds the outage itself
    assert cache.mode == "memory"
    server.start()
    assert cache.ping() is True
    assert cache.mode == "redis"
    cache.close()


def _figures(stats: dict[str, Any], scope: str) -> dict[str, Any]:
    names = ["hits", "misses", "errors", "invalid", "fallback_activations", "reconnects"]
    return {name: stats[name][scope] for name in [*names, "hit_rate"]}


# --- versioned payloads: a page and its generation in one round trip --------------------------


def test_a_versioned_payload_comes_back_as_the_stored_bytes_while_its_version_is_current(
    cache: Cache,
) -> None:
    body = '{"data":[{"title":"café \\u00e9"}],"count":1}'.encode()
    assert cache.get_versioned("v:{s}:gen", "v:{s}:page") == (None, None)
    cache.set("v:{s}:gen", "g1")
    cache.set_versioned("v:{s}:page", "g1", body)
    assert cache.get_versioned("v:{s}:gen", "v:{s}:page") == ("g1", body)
    cache.delete("v:{s}:gen")  # a write: every page of the scope is stale at once
    assert cache.get_versioned("v:{s}:gen", "v:{s}:page") == (None, None)
    cache.set("v:{s}:gen", "g2")
    assert cache.get_versioned("v:{s}:gen", "v:{s}:page") == ("g2", None)
    stats = cache.stats()
    assert (stats["hits"]["process"], stats["misses"]["process"]) == (3, 5)
    assert stats["invalid"]["process"] == 0


@pytest.mark.redis
def test_a_versioned_read_is_one_round_trip_that_cluster_slots_allow(server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url))
    client = redis.Redis.from_url(server.url)
    try:
        cache.set("v:{s}:gen", "g1")
        cache.set_versioned("v:{s}:page", "g1", b"[1]")
        before = int(client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))
        gets = int(client.info("commandstats").get("cmdstat_get", {}).get("calls", 0))
        assert cache.get_versioned("v:{s}:gen", "v:{s}:page") == ("g1", b"[1]")
        stats = client.info("commandstats")
        assert stats["cmdstat_mget"]["calls"] == before + 1
        assert stats.get("cmdstat_get", {}).get("calls", 0) == gets
        prefix = cache_settings(server.url).cache_prefix
        slots = {key_slot(f"{prefix}:v:{{s}}:{k}".encode()) for k in ("gen", "page")}
        assert len(slots) == 1
    finally:
        client.close()
        cache.close()


@pytest.mark.parametrize(
    "stored",
    [b"not json", b'{"data":[]}', b'["g1"', b'["g1",3,[1]', b'["g1",x,[1]]', b'"g1"', b"[" * 5],
)
def test_a_versioned_value_not_written_as_one_is_a_miss(stored: bytes, server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url))
    client = redis.Redis.from_url(server.url)
    try:
        cache.set("v:{s}:gen", "g1")
        client.set(cache_settings(server.url).cache_prefix + ":v:{s}:page", stored)
        assert cache.get_versioned("v:{s}:gen", "v:{s}:page") == ("g1", None)
        assert cache.stats()["invalid"]["process"] == 1
    finally:
        client.close()
        cache.close()


def test_a_version_that_is_not_a_plain_token_is_refused(cache: Cache) -> None:
    for version in ("", 'a"b', "x" * 65, "a,b"):
        with pytest.raises(ValueError, match="version"):
            cache.set_versioned("v:{s}:page", version, b"[]")


def test_get_decoded_hands_the_stored_bytes_to_the_decoder_and_counts_like_get(
    cache: Cache,
) -> None:
    seen: list[bytes] = []

    def decoder(raw: bytes) -> Any:
        seen.append(raw)
        value = json.loads(raw)
        if value == "junk":
            raise ValueError("not a record")
        return value

    cache.set("record", {"a": 1})
    cache.set("junk", "junk")
    assert cache.get_decoded("record", decoder) == {"a": 1}
    assert seen == [b'{"a":1}']
    assert cache.get_decoded("junk", decoder, default="missing") == "missing"
    assert cache.get_decoded("absent", decoder, default="missing") == "missing"
    stats = cache.stats()
    assert (stats["hits"]["process"], stats["misses"]["process"]) == (1, 2)
    assert stats["invalid"]["process"] == 1


def _on_a_loop[T](work: Callable[[], Awaitable[T]]) -> T:
    async def run() -> T:
        return await work()

    return asyncio.run(run())


@pytest.mark.redis
def test_the_loops_reads_answer_what_the_threads_reads_answer(server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url))
    try:
        cache.set("record", {"a": 1})
        cache.set_versioned("page", "v1", b'{"p":1}')
        cache.set("gen", "v1")

        async def reads() -> tuple[Any, ...]:
            return (
                await cache.get_decoded_async("record", json.loads),
                await cache.get_decoded_async("absent", json.loads, default="missing"),
                await cache.get_versioned_async("gen", "page"),
            )

        assert _on_a_loop(reads) == (
            cache.get_decoded("record", json.loads),
            "missing",
            cache.get_versioned("gen", "page"),
        )
        assert _on_a_loop(reads)[2] == ("v1", b'{"p":1}')
        stats = cache.stats()  # counted like the threads' reads, outside tentative_lookups
        assert (stats["hits"]["process"], stats["misses"]["process"]) == (3 * 2 + 3, 2)
    finally:
        cache.close()


@pytest.mark.redis
def test_the_loops_lookups_count_only_when_kept(server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url))
    try:
        cache.set("record", {"a": 1})

        async def read() -> Lookups:
            with tentative_lookups() as lookups:
                await cache.get_decoded_async("record", json.loads)
                await cache.get_decoded_async("absent", json.loads)
            return lookups

        noted = _on_a_loop(read)
        assert (noted.hits, noted.misses) == (1, 1)
        assert (cache.stats()["hits"]["process"], cache.stats()["misses"]["process"]) == (0, 0)
        cache.count_lookups(noted)
        assert (cache.stats()["hits"]["process"], cache.stats()["misses"]["process"]) == (1, 1)
    finally:
        cache.close()


def test_without_redis_the_loop_reads_nothing() -> None:
    cache = Cache(cache_settings())
    cache.set("record", {"a": 1})  # in-process: the loop reads Redis only
    assert _on_a_loop(lambda: cache.get_decoded_async("record", json.loads)) is None
    assert _on_a_loop(lambda: cache.get_versioned_async("gen", "page")) == (None, None)


@pytest.mark.redis
def test_a_failure_on_the_loop_opens_the_breaker_for_every_thread(server: RedisServer) -> None:
    cache = Cache(cache_settings(server.url, {"CACHE_PROBE_INTERVAL_SECONDS": "60"}))
    try:
        cache.set("record", {"a": 1})
        server.kill()
        assert _on_a_loop(lambda: cache.get_decoded_async("record", json.loads)) is None
        assert cache.mode == "memory"
        stats = cache.stats()
        assert (stats["errors"]["process"], stats["fallback_activations"]["process"]) == (1, 1)
        # The breaker is open: the loop no longer tries Redis at all.
        assert _on_a_loop(lambda: cache.get_decoded_async("record", json.loads)) is None
        assert cache.stats()["errors"]["process"] == 1
    finally:
        cache.close()


def _reads_at_once(cache: Cache, count: int) -> list[Any]:
    """``count`` reads of "record" awaiting Redis on one loop at the same time."""

    async def reads() -> list[Any]:
        pending = [cache.get_decoded_async("record", json.loads) for _ in range(count)]
        return list(await asyncio.gather(*pending))

    return _on_a_loop(reads)


@pytest.mark.redis
def test_reads_awaiting_on_the_loop_share_a_bounded_number_of_connections(
    server: RedisServer,
) -> None:
    """Nothing else bounds how many reads await Redis on the loop at once."""
    from shared import cache as cache_module

    cache = Cache(cache_settings(server.url))
    admin = redis.Redis.from_url(server.url)
    try:
        cache.set("record", {"a": 1})
        answers = _reads_at_once(cache, 200)
        # Past the bound a read is left to a thread (None), never waiting for a connection.
        assert answers.count({"a": 1}) >= cache_module._LOOP_CONNECTIONS, answers
        assert set(map(json.dumps, answers)) <= {json.dumps({"a": 1}), "null"}
        clients = admin.client_list()
        # This admin connection, the cache's thread-side one, and the loop's bounded pool.
        assert len(clients) <= 2 + cache_module._LOOP_CONNECTIONS, len(clients)
        assert cache.mode == "redis"
    finally:
        admin.close()
        cache.close()


@pytest.mark.redis
def test_a_redis_restart_does_not_open_the_breaker_on_the_loop(server: RedisServer) -> None:
    """The loop's pooled connection is dead after a restart: the read retries it once on a new
    connection, as the threads' pool reconnects on checkout, instead of counting a failure."""
    cache = Cache(cache_settings(server.url, {"CACHE_PROBE_INTERVAL_SECONDS": "60"}))
    loop = asyncio.new_event_loop()  # one loop throughout, as the worker's
    try:
        cache.set("record", {"a": 1})
        assert loop.run_until_complete(cache.get_decoded_async("record", json.loads)) == {"a": 1}
        server.stop()
        server.start()  # empty, on the same port
        cache.set("record", {"a": 2})  # the threads' client reconnects by itself
        assert loop.run_until_complete(cache.get_decoded_async("record", json.loads)) == {"a": 2}
        assert cache.mode == "redis"
        assert cache.stats()["errors"]["process"] == 0
    finally:
        loop.close()
        cache.close()


@pytest.mark.redis
def test_a_connection_the_server_closed_is_no_failure_on_the_loop() -> None:
    """Redis closes idle connections (Azure Cache for Redis after 10 minutes; a restart or a
    failover closes them all): the loop's next read reconnects, as a thread's does, instead of
    opening the breaker for every thread (and, after a restart, once per pooled connection)."""
    with RedisServer(["timeout 1"]) as server:
        cache = Cache(cache_settings(server.url, {"CACHE_PROBE_INTERVAL_SECONDS": "60"}))
        try:
            cache.set("record", {"a": 1})

            async def idle_then_read() -> list[Any]:
                reads = [cache.get_decoded_async("record", json.loads) for _ in range(4)]
                first = list(await asyncio.gather(*reads))  # four pooled connections
                await asyncio.sleep(2.5)  # the server closes them, idle past its timeout
                reads = [cache.get_decoded_async("record", json.loads) for _ in range(4)]
                return first + list(await asyncio.gather(*reads))

            assert _on_a_loop(idle_then_read) == [{"a": 1}] * 8
            assert cache.get("record") == {"a": 1}  # so does a thread's
            stats = cache.stats()
            assert (stats["errors"]["process"], stats["fallback_activations"]["process"]) == (0, 0)
            assert cache.mode == "redis"
        finally:
            cache.close()


@pytest.mark.redis
def test_more_reads_awaiting_than_the_loop_has_connections_open_no_breaker(
    server: RedisServer,
) -> None:
    """Redis answers every command well within the socket timeout, but 200 reads await at once:
    those that find every loop connection taken go to a thread, and Redis has not failed."""
    from shared import cache as cache_module

    # Every answer 60 ms late, of the 250 ms socket timeout.
    proxy = TcpProxy("127.0.0.1", server.port, reply_delay=0.06).start()
    cache = Cache(
        cache_settings(f"redis://127.0.0.1:{proxy.port}/0", {"CACHE_PROBE_INTERVAL_SECONDS": "60"})
    )
    try:
        cache.set("record", {"a": 1})
        answers = _reads_at_once(cache, 200)
        assert answers.count({"a": 1}) >= cache_module._LOOP_CONNECTIONS, answers
        assert None in answers  # the rest did not wait for a connection: a thread reads them
        stats = cache.stats()
        assert (stats["errors"]["process"], stats["fallback_activations"]["process"]) == (0, 0)
        assert cache.mode == "redis"
    finally:
        cache.close()
        proxy.close()
