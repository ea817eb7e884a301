"""Delayed deletes: the second eviction after a write, on its own and through the cache."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from shared.cache import Cache
from shared.delayed_deletes import DelayedDeletes
from tests.support.redis_server import RedisServer, cache_settings
from tests.support.waiting import wait_until


class Recorder:
    """The ``delete`` a DelayedDeletes calls: records each call, optionally fails once."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail_first = fail_first

    def __call__(self, *keys: str) -> None:
        self.calls.append(keys)
        if self.fail_first:
            self.fail_first = False
            raise ConnectionError("redis went away")


def test_deletes_run_once_the_delay_has_passed_in_order():
    record = Recorder()
    later = DelayedDeletes(record, delay=0.3)
    scheduled = time.monotonic()
    later.schedule(["user:1", "item:1"])
    later.schedule(["item:2"])
    wait_until(lambda: "item:2" in {k for call in record.calls for k in call}, "the deletes")
    assert time.monotonic() - scheduled >= 0.3
    assert [key for call in record.calls for key in call] == ["user:1", "item:1", "item:2"]
    later.close()


def test_a_failed_delete_is_logged_and_the_thread_carries_on(caplog: pytest.LogCaptureFixture):
    record = Recorder(fail_first=True)
    later = DelayedDeletes(record, delay=0.05)
    later.schedule(["a"])
    wait_until(lambda: len(record.calls) == 1, "the failing delete")
    later.schedule(["b"])
    wait_until(lambda: len(record.calls) == 2, "the next delete")
    assert record.calls == [("a",), ("b",)]
    assert "Delayed delete failed" in caplog.text
    later.close()


def test_close_sends_what_is_pending_at_once_each_key_once_and_nothing_after():
    record = Recorder()
    later = DelayedDeletes(record, delay=3600)
    later.schedule(["x", "y"])
    later.schedule(["y", "z"])
    later.close()
    assert record.calls == [("x", "y", "z")]
    later.schedule(["w"])
    assert record.calls == [("x", "y", "z")]


def test_beyond_the_limit_the_oldest_batch_is_dropped(caplog: pytest.LogCaptureFixture):
    record = Recorder()
    later = DelayedDeletes(record, delay=3600, limit=2)
    for key in ("a", "b", "c"):
        later.schedule([key])
    later.close()
    assert record.calls == [("b", "c")]
    assert "fell behind" in caplog.text


@pytest.mark.parametrize("with_redis", [False, True], ids=["memory", "redis"])
def test_the_cache_deletes_a_late_store_again_after_the_configured_delay(with_redis: bool):
    with ExitStack() as stack:
        url = stack.enter_context(RedisServer()).url if with_redis else None
        cache = Cache(cache_settings(url, {"CACHE_SECOND_EVICTION_MS": "200"}))
        stack.callback(cache.close)
        cache.set("user:1", {"name": "old"})
        cache.delete("user:1")
        cache.delete_later("user:1")
        cache.set("user:1", {"name": "old"})  # a racing reader's late store
        wait_until(lambda: cache.get("user:1") is None, "the second eviction")
        assert cache.mode == ("redis" if with_redis else "memory")


def test_with_a_zero_delay_the_cache_never_deletes_again():
    cache = Cache(cache_settings(None, {"CACHE_SECOND_EVICTION_MS": "0"}))
    cache.delete_later("user:1")
    cache.set("user:1", 1)
    time.sleep(0.2)
    assert cache.get("user:1") == 1
    cache.close()
