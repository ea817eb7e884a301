"""Scale-out (DESIGN.md): two app processes sharing one PostgreSQL database and one Redis.

Each process has its own pools and breaker but one cache namespace (the same CACHE_PREFIX):
whatever one process writes or invalidates, the other's next read sees.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, app_env, create_superuser
from tests.support.api import Account, Api
from tests.support.cache_app import (
    create_item,
    delta,
    list_items,
    me,
    pattern_path,
    served,
    stats,
)
from tests.support.devhost_process import DevhostProcess
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@dataclass
class Pair:
    a: Api
    b: Api
    server_a: DevhostProcess
    server_b: DevhostProcess
    redis: RedisServer
    prefix: str
    user: Account


@pytest.fixture(scope="module")
def pair(pg_url: str) -> Iterator[Pair]:
    prefix = f"stratus-scale-{uuid.uuid4().hex[:8]}"
    with RedisServer() as redis_server:
        env = app_env(
            pg_url,
            redis_server.url,
            CACHE_PREFIX=prefix,
            CACHE_PROBE_INTERVAL_SECONDS="0.5",
            **{"AzureWebJobs.redis_reconnect.Disabled": "true"},
        )
        create_superuser(env)
        with (
            served(dict(env), SUPERUSER, SUPERUSER_PASSWORD) as (server_a, a),
            served(dict(env), SUPERUSER, SUPERUSER_PASSWORD) as (server_b, b),
        ):
            assert server_a.pid != server_b.pid and a.url != b.url
            yield Pair(a, b, server_a, server_b, redis_server, prefix, a.new_user())


def _get(api: Api, account: Account, item_id: str) -> tuple[int, dict[str, object]]:
    response = api.request("GET", f"/api/v1/items/{item_id}", headers=account.headers)
    return response.status_code, response.json()


def test_both_processes_use_redis_with_one_namespace(pair: Pair) -> None:
    for api in (pair.a, pair.b):
        assert stats(api)["mode"] == "redis"
    with pair.redis.client() as client:
        keys = {key.decode() for key in client.scan_iter(match=f"{pair.prefix}:*")}
    assert f"{pair.prefix}:user:{pair.user.id}" in keys


def test_an_item_written_through_one_process_is_in_the_others_cached_reads_at_once(
    pair: Pair,
) -> None:
    a, b, user = pair.a, pair.b, pair.user
    everyone = list_items(b, b.admin)["count"]
    start = list_items(b, user)["count"]
    for n in range(5):
        list_items(b, user)  # cached by B
        list_items(b, b.admin)
        item = create_item(a, user, f"from A {n}")
        seen = list_items(b, user)
        assert seen["count"] == start + n + 1
        assert seen["data"][0] == item
        assert list_items(b, b.admin)["count"] == everyone + n + 1

    path = f"/api/v1/items/{item['id']}"
    assert _get(b, user, item["id"]) == (200, item)  # cached by B
    changed = a.request("PUT", path, json={"title": "changed by A"}, headers=user.headers)
    assert changed.status_code == 200, changed.text
    assert _get(b, user, item["id"])[1]["title"] == "changed by A"
    assert list_items(b, user)["data"][0]["title"] == "changed by A"
    assert a.request("DELETE", path, headers=user.headers).status_code == 200
    assert _get(b, user, item["id"])[0] == 404
    assert list_items(b, user)["count"] == start + 4


def test_a_users_me_patch_through_one_process_is_seen_by_the_other_at_once(pair: Pair) -> None:
    a, b, user = pair.a, pair.b, pair.user
    for n in range(3):
        me(b, user)  # cached by B
        name = f"Scaled {n} {uuid.uuid4().hex[:6]}"
        patched = a.request(
            "PATCH", "/api/v1/users/me", json={"full_name": name}, headers=user.headers
        )
        assert patched.status_code == 200, patched.text
        assert me(b, user)["full_name"] == name
        assert me(a, user)["full_name"] == name


def test_a_pattern_invalidated_through_one_process_makes_the_other_miss(pair: Pair) -> None:
    a, b, user = pair.a, pair.b, pair.user
    me(b, user)
    stats(b)  # the superuser is cached too
    before = stats(b)
    me(b, user)
    hit = stats(b)
    assert delta(before, hit) == {"hits": 2}  # the user, then this read's superuser

    response = a.request("DELETE", pattern_path(f"user:{user.id}"), headers=a.admin.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"pattern": f"user:{user.id}", "removed": 1}
    me(b, user)
    assert delta(hit, stats(b)) == {"misses": 1, "hits": 1}  # B missed on the user

    list_items(b, user)
    before = stats(b)
    response = a.request("DELETE", pattern_path("items:*"), headers=a.admin.headers)
    assert response.status_code == 200 and response.json()["removed"] >= 2, response.text
    list_items(b, user)  # the user is a hit; the generation and the page are misses
    assert delta(before, stats(b)) == {"misses": 2, "hits": 2}


def test_cluster_stats_are_the_sum_of_both_processes(pair: Pair) -> None:
    a, b, user = pair.a, pair.b, pair.user
    me(a, user)
    me(b, user)
    of_a = stats(a)  # flushes A's counts to Redis
    of_b = stats(b)  # flushes B's, then reads the cluster's
    for name in ("hits", "misses", "errors", "fallback_activations"):
        both = of_a[name]["process"] + of_b[name]["process"]
        assert of_b[name]["cluster"] == both, (name, of_a[name], of_b[name])
    assert of_b["hits"]["process"] < of_b["hits"]["cluster"]


def _wait_for_redis_mode(api: Api, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while stats(api)["mode"] != "redis":
        assert time.monotonic() < deadline, "the process did not go back to Redis"
        time.sleep(0.2)


def test_while_redis_is_down_an_item_changed_through_one_process_is_fresh_on_the_other(
    pair: Pair,
) -> None:
    """The scale drill's finding: in memory mode each process used to keep items and pages for
    their TTL, so the other process served the version before a write for up to a minute."""
    a, b, user = pair.a, pair.b, pair.user
    item = create_item(a, user, "before the outage")
    path = f"/api/v1/items/{item['id']}"
    pair.redis.stop()
    try:
        for n in range(3):
            assert _get(b, user, item["id"])[0] == 200  # read (and formerly kept) by B
            list_items(b, user)
            changed = a.request("PUT", path, json={"title": f"during {n}"}, headers=user.headers)
            assert changed.status_code == 200, changed.text
            assert _get(b, user, item["id"])[1]["title"] == f"during {n}"
            assert list_items(b, user)["data"][0]["title"] == f"during {n}"
        assert stats(b)["mode"] == "memory"
        assert a.request("DELETE", path, headers=user.headers).status_code == 200
        assert _get(b, user, item["id"])[0] == 404
    finally:
        pair.redis.start()
        _wait_for_redis_mode(a)
        _wait_for_redis_mode(b)
