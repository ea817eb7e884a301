"""The cache through the real app under devhost: admin routes, stats, and reads never stale.

Every test runs in both modes: ``redis`` (a private, password-protected redis-server) and
``memory`` (no REDIS_URL). The database is the session's real PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, app_env, create_superuser
from tests.support.api import Account, Api
from tests.support.cache_app import (
    CLEAR,
    STATS,
    create_item,
    delta,
    entries,
    list_items,
    me,
    pattern_path,
    process_counts,
    served,
    stats,
    wait_for_output,
)
from tests.support.devhost_process import DevhostProcess
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS_PASSWORD = "redis-pw-" + uuid.uuid4().hex
NOT_AUTHENTICATED = {"detail": "Not authenticated"}
NOT_ENOUGH_PRIVILEGES = {"detail": "The user doesn't have enough privileges"}
ADMIN_ROUTES = (("GET", STATS), ("POST", CLEAR), ("DELETE", pattern_path("user:*")))
UUID_GLOB = "????????-????-????-????-????????????"


@dataclass
class Stack:
    mode: str
    server: DevhostProcess
    api: Api
    prefix: str
    redis: RedisServer | None
    _user: Account | None = field(default=None, repr=False)

    @property
    def user(self) -> Account:
        """One normal user for the module (creating users costs two password hashes)."""
        if self._user is None:
            self._user = self.api.new_user()
        return self._user

    @property
    def admin(self) -> Account:
        return self.api.admin


def _stack(pg_url: str, redis_server: RedisServer | None, **overrides: str) -> Iterator[Stack]:
    env = app_env(
        pg_url,
        redis_server.url if redis_server else None,
        CACHE_PROBE_INTERVAL_SECONDS="0.5",
        **{"AzureWebJobs.redis_reconnect.Disabled": "true", **overrides},
    )
    create_superuser(env)
    with served(env, SUPERUSER, SUPERUSER_PASSWORD) as (server, api):
        yield Stack(
            "redis" if redis_server else "memory", server, api, env["CACHE_PREFIX"], redis_server
        )


@pytest.fixture(scope="module")
def redis_stack(pg_url: str) -> Iterator[Stack]:
    with RedisServer(password=REDIS_PASSWORD) as redis_server:
        yield from _stack(pg_url, redis_server)


@pytest.fixture(scope="module")
def evicting_stack(pg_url: str) -> Iterator[Stack]:
    """With the second eviction on, as deployed (the other stacks turn it off)."""
    with RedisServer(password=REDIS_PASSWORD) as redis_server:
        yield from _stack(pg_url, redis_server, CACHE_SECOND_EVICTION_MS="1000")


@pytest.fixture(scope="module")
def memory_stack(pg_url: str) -> Iterator[Stack]:
    yield from _stack(pg_url, None)


@pytest.fixture(params=["redis", "memory"])
def stack(request: pytest.FixtureRequest) -> Stack:
    value: Stack = request.getfixturevalue(f"{request.param}_stack")
    return value


def _clear(stack: Stack) -> int:
    response = stack.api.request("POST", CLEAR, headers=stack.admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"removed"} and isinstance(body["removed"], int), body
    removed: int = body["removed"]
    return removed


def _invalidate(stack: Stack, pattern: str) -> int:
    response = stack.api.request("DELETE", pattern_path(pattern), headers=stack.admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"pattern": pattern, "removed": body["removed"]}, body
    removed: int = body["removed"]
    return removed


# --- who may use the admin routes ----------------------------------------------------------


def test_admin_routes_answer_401_to_anonymous_and_403_to_normal_users_and_change_nothing(
    stack: Stack,
) -> None:
    api, user = stack.api, stack.user
    me(api, user)
    before = stats(api)
    for method, path in ADMIN_ROUTES:
        anonymous = api.request(method, path)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json() == NOT_AUTHENTICATED
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        normal = api.request(method, path, headers=user.headers)
        assert normal.status_code == 403, (method, path, normal.text)
        assert normal.json() == NOT_ENOUGH_PRIVILEGES
    after = stats(api)
    # Three refused user look-ups and this read's own, all hits: nothing was cleared.
    assert delta(before, after) == {"hits": 4}
    assert entries(after) == entries(before) >= 2


def test_superusers_get_stats_labelled_by_scope(stack: Stack) -> None:
    response = stack.api.request("GET", STATS, headers=stack.admin.headers)
    assert response.status_code == 200
    figures = response.json()
    assert figures["mode"] == stack.mode
    assert figures["redis_configured"] is (stack.mode == "redis")
    for name in ("hits", "misses", "errors", "invalid", "fallback_activations", "reconnects"):
        assert set(figures[name]) == {"process", "cluster"}, name
        assert isinstance(figures[name]["process"], int), name
        if stack.mode == "memory":
            assert figures[name]["cluster"] is None, name  # no cluster without a shared Redis
        else:
            assert isinstance(figures[name]["cluster"], int), name


# --- counters, clear and invalidation are exact ----------------------------------------------


def test_stats_count_a_scripted_sequence_of_cached_reads_exactly(stack: Stack) -> None:
    api, user = stack.api, stack.user
    _clear(stack)
    before = stats(api)  # its own look-up of the superuser was a miss, and cached them again
    assert entries(before) == 1
    for _ in range(3):
        me(api, user)  # a miss, then two hits
    for _ in range(2):
        list_items(api, user)  # user hit + generation and page misses; then three hits
    after = stats(api)  # plus this read's own hit
    assert delta(before, after) == {"hits": 7, "misses": 3}
    assert entries(after) == 4  # two users, the user's page generation, one page
    counts = process_counts(after)
    assert after["hit_rate"]["process"] == round(
        counts["hits"] / (counts["hits"] + counts["misses"]), 4
    )
    if stack.mode == "redis":
        # This process is the only one on its private Redis: the cluster is this process.
        for name in ("hits", "misses", "errors"):
            assert after[name]["cluster"] == after[name]["process"], name
        assert after["local_size"]["process"] == 0  # nothing is cached in-process in redis mode
    else:
        assert after["keys"]["cluster"] is None


def test_clear_removes_exactly_the_cached_entries_and_says_how_many(stack: Stack) -> None:
    api, user = stack.api, stack.user
    _clear(stack)
    stats(api)  # caches the superuser: 1
    me(api, user)  # 2
    list_items(api, user)  # 4
    assert _clear(stack) == 4
    # The second clear's own sign-in cached the superuser again, and nothing else.
    assert _clear(stack) == 1


def test_invalidation_removes_exactly_the_matching_keys_and_the_next_read_misses(
    stack: Stack,
) -> None:
    api, user = stack.api, stack.user
    _clear(stack)
    me(api, user)
    list_items(api, user)
    list_items(api, stack.admin)  # the superuser's page covers everyone's items
    assert entries(stats(api)) == 6
    assert _invalidate(stack, "items:*:gen") == 2  # the user's and everyone's generation
    assert _invalidate(stack, "items:*") == 2  # the two pages
    assert _invalidate(stack, f"user:{user.id}") == 1
    assert _invalidate(stack, f"user:{user.id}") == 0
    assert _invalidate(stack, "user:\\*") == 0  # an escaped '*' is a literal
    assert _invalidate(stack, f"user:{UUID_GLOB}") == 1  # the superuser, cached by this call
    assert _invalidate(stack, "[iu][st]*") == 1  # and again
    before = stats(api)
    me(api, user)
    assert delta(before, stats(api)) == {"misses": 1, "hits": 1}  # the user was really gone


# --- patterns: validated, and confined to the namespace ------------------------------------


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("user:[abc", "unclosed '['"),
        ("user:\\", "must not end with a backslash"),
        ("x" * 257, "at most 256 characters"),
        ("user:\x01", "control characters"),
    ],
    ids=["unclosed-bracket", "trailing-backslash", "257-chars", "control-char"],
)
def test_malformed_or_over_long_patterns_are_refused_with_400_naming_the_problem(
    stack: Stack, pattern: str, problem: str
) -> None:
    api = stack.api
    me(api, stack.user)
    before = entries(stats(api))
    since = len(stack.server.output())
    response = api.request("DELETE", pattern_path(pattern), headers=stack.admin.headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert detail.startswith("Invalid pattern: ") and problem in detail, detail
    assert entries(stats(api)) == before
    assert "invalidated by" not in stack.server.output()[since:]


def test_a_pattern_of_exactly_256_characters_is_accepted(stack: Stack) -> None:
    assert _invalidate(stack, "x" * 256) == 0


def test_an_empty_pattern_is_refused_with_400_naming_the_problem(stack: Stack) -> None:
    api = stack.api
    me(api, stack.user)
    before = entries(stats(api))
    for path in ("/api/v1/cache/", "/api/v1/cache"):
        response = api.request("DELETE", path, headers=stack.admin.headers)
        assert response.status_code == 400, response.text
        assert "empty" in response.json()["detail"]
    assert entries(stats(api)) == before


def test_no_pattern_and_no_clear_reaches_keys_outside_the_namespace(redis_stack: Stack) -> None:
    stack = redis_stack
    assert stack.redis is not None
    prefix = stack.prefix
    outside = {
        "stratus-other:a": b"another app",
        "other": b"no prefix at all",
        prefix: b"the bare prefix",
        f"{prefix}x:a": b"a longer name starting with the prefix",
        f"{prefix}-evil:k": b"prefix and dash",
        f"x:{prefix}:a": b"the prefix in the middle",
        "..": b"dots",
        "../a": b"dots and slash",
        "a:b": b"a colon",
    }
    inside = {f"{prefix}:planted:1": b"1", f"{prefix}:planted:2": b"2", f"{prefix}:nocolon": b"3"}
    client = stack.redis.client()
    other_db = stack.redis.client()
    other_db.select(1)
    try:
        other_db.set(f"{prefix}:db1", b"another database")
        _clear(stack)
        client.mset({**outside, **inside})
        assert _invalidate(stack, "..") == 0
        assert _invalidate(stack, "../*") == 0
        assert _invalidate(stack, "stratus-other:*") == 0
        assert _invalidate(stack, f"{prefix}x:*") == 0
        assert _invalidate(stack, "*:*") == 3  # planted:1, planted:2, and the superuser
        assert _invalidate(stack, "*") == 2  # nocolon, and the superuser cached again
        client.mset(inside)
        assert _clear(stack) == 4
        assert list(client.scan_iter(match=f"{prefix}:*")) == []
        for key, value in outside.items():
            assert client.get(key) == value, key
        assert other_db.get(f"{prefix}:db1") == b"another database"
    finally:
        client.delete(*outside)
        other_db.delete(f"{prefix}:db1")
        client.close()
        other_db.close()


# --- what stats and logs reveal ------------------------------------------------------------


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def test_stats_hold_only_numbers_and_states_never_values_urls_or_passwords(stack: Stack) -> None:
    api, user = stack.api, stack.user
    marker = f"Marker {uuid.uuid4().hex}"
    patched = api.request(
        "PATCH", "/api/v1/users/me", json={"full_name": marker}, headers=user.headers
    )
    assert patched.status_code == 200, patched.text
    assert me(api, user)["full_name"] == marker  # now a cached value
    response = api.request("GET", STATS, headers=stack.admin.headers)
    assert response.status_code == 200
    text = response.text
    forbidden = [marker, user.email, SUPERUSER, stack.prefix, "redis://", "127.0.0.1", "@"]
    if stack.redis is not None:
        forbidden += [REDIS_PASSWORD, stack.redis.url, f":{stack.redis.port}"]
    for secret in forbidden:
        assert secret not in text, secret
    for path, leaf in _leaves(response.json()):
        if path == ".mode":
            assert leaf in {"redis", "memory"}
        elif isinstance(leaf, str):
            assert path.startswith(".last_"), path
            datetime.fromisoformat(leaf)  # a timestamp, nothing else
        else:
            assert leaf is None or isinstance(leaf, int | float | bool), (path, leaf)


def test_every_admin_action_is_logged_with_the_acting_user(stack: Stack) -> None:
    api, admin, user, server = stack.api, stack.admin, stack.user, stack.server
    since = len(server.output())
    stats(api)
    removed = _clear(stack)
    pattern = f"log-{uuid.uuid4().hex[:8]}:*"
    _invalidate(stack, pattern)
    for method, path in ADMIN_ROUTES:  # refused attempts are not actions
        assert api.request(method, path, headers=user.headers).status_code == 403
    _invalidate(stack, "end-of-test")
    output = wait_for_output(server, "cache keys 'end-of-test' invalidated", since)
    assert f"cache stats read by {admin.id}" in output
    assert f"cache cleared by {SUPERUSER} ({admin.id}): {removed} keys removed" in output
    assert f"cache keys '{pattern}' invalidated by {SUPERUSER} ({admin.id}): 0 removed" in output
    assert user.id not in output and user.email not in output
    assert REDIS_PASSWORD not in server.output()


# --- reads are never stale for the writer --------------------------------------------------


def test_a_list_read_right_after_each_create_includes_the_new_item(stack: Stack) -> None:
    api, user, admin = stack.api, stack.user, stack.admin
    count = list_items(api, user)["count"]
    everyone = list_items(api, admin)["count"]
    for n in range(8):
        item = create_item(api, user, f"created {n}")
        mine = list_items(api, user)
        assert mine["count"] == count + n + 1
        assert mine["data"][0] == item  # newest first, exactly as created
        assert list_items(api, admin)["count"] == everyone + n + 1
        read = api.request("GET", f"/api/v1/items/{item['id']}", headers=user.headers)
        assert read.json() == item


def test_an_updated_item_is_read_back_changed_at_once(stack: Stack) -> None:
    api, user, admin = stack.api, stack.user, stack.admin
    item = create_item(api, user, "version 0")
    path = f"/api/v1/items/{item['id']}"
    for n in range(1, 6):
        assert api.request("GET", path, headers=user.headers).status_code == 200  # cached
        assert api.request("GET", path, headers=admin.headers).status_code == 200
        list_items(api, user)
        title = f"version {n}"
        updated = api.request("PUT", path, json={"title": title}, headers=user.headers)
        assert updated.status_code == 200 and updated.json()["title"] == title
        assert api.request("GET", path, headers=user.headers).json()["title"] == title
        assert api.request("GET", path, headers=admin.headers).json()["title"] == title
        assert list_items(api, user)["data"][0]["title"] == title


def test_a_deleted_item_is_gone_from_every_read_at_once(stack: Stack) -> None:
    api, user, admin = stack.api, stack.user, stack.admin
    items = [create_item(api, user, f"doomed {n}") for n in range(3)]
    for item in items:
        path = f"/api/v1/items/{item['id']}"
        assert api.request("GET", path, headers=user.headers).status_code == 200  # cached
        before = list_items(api, user)
        everyone = list_items(api, admin)
        assert item["id"] in {i["id"] for i in before["data"]}
        deleted = api.request("DELETE", path, headers=user.headers)
        assert deleted.status_code == 200, deleted.text
        gone = api.request("GET", path, headers=user.headers)
        assert gone.status_code == 404 and gone.json() == {"detail": "Item not found"}
        after = list_items(api, user)
        assert item["id"] not in {i["id"] for i in after["data"]}
        assert after["count"] == before["count"] - 1
        assert list_items(api, admin)["count"] == everyone["count"] - 1


def test_a_user_patch_is_seen_by_the_next_users_me(stack: Stack) -> None:
    api, user, admin = stack.api, stack.user, stack.admin
    for n in range(4):
        me(api, user)  # cached
        name = f"Self {n} {uuid.uuid4().hex[:6]}"
        patched = api.request(
            "PATCH", "/api/v1/users/me", json={"full_name": name}, headers=user.headers
        )
        assert patched.status_code == 200 and patched.json()["full_name"] == name
        assert me(api, user)["full_name"] == name
    # A superuser's change to someone else is seen by that user's next read, and by theirs.
    by_id = f"/api/v1/users/{user.id}"
    assert api.request("GET", by_id, headers=admin.headers).status_code == 200  # cached
    name = f"Renamed {uuid.uuid4().hex[:6]}"
    patched = api.request("PATCH", by_id, json={"full_name": name}, headers=admin.headers)
    assert patched.status_code == 200, patched.text
    assert me(api, user)["full_name"] == name
    assert api.request("GET", by_id, headers=admin.headers).json()["full_name"] == name


def test_a_record_a_slow_reader_stores_after_a_write_is_evicted_again_within_seconds(
    evicting_stack: Stack,
) -> None:
    """A reader that loaded the row before a write committed can store it after the write's
    eviction (the read-write race); the second eviction removes it, instead of the stale
    record living for its whole TTL (30 minutes for a user). The late store is made here by
    hand, byte for byte, right after each write."""
    stack = evicting_stack
    assert stack.redis is not None
    api, user = stack.api, stack.user
    client = stack.redis.client()
    item = create_item(api, user, "before")
    item_path = f"/api/v1/items/{item['id']}"
    item_key = f"{stack.prefix}:item:{item['id']}"
    name = f"Fresh {uuid.uuid4().hex[:6]}"
    cases = [
        (
            item_key,
            lambda: api.request("GET", item_path, headers=user.headers).json()["title"],
            lambda: api.request("PUT", item_path, json={"title": "after"}, headers=user.headers),
            "after",
        ),
        (
            f"{stack.prefix}:user:{user.id}",
            lambda: me(api, user)["full_name"],
            lambda: api.request(
                "PATCH", "/api/v1/users/me", json={"full_name": name}, headers=user.headers
            ),
            name,
        ),
    ]
    try:
        # The create's own second eviction must not be the one that removes the late store.
        cases[0][1]()
        wait_until(lambda: client.exists(item_key) == 0, "the create's second eviction")
        for key, read, write, fresh in cases:
            assert read() != fresh
            stale = client.get(key)
            assert stale is not None, key
            response = write()
            assert response.status_code == 200, response.text
            client.set(key, stale, ex=1800)  # the slow reader's late store
            wait_until(lambda: read() == fresh, f"{key}: the stale record's removal")
    finally:
        client.close()
