"""Pattern invalidation: Redis glob rules, identical in memory mode and against Redis."""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Iterator

import pytest

from shared.cache import Cache, validate_pattern
from shared.glob import compile_pattern
from tests.support.redis_server import RedisServer, cache_settings

KEYS = [
    "hello", "hallo", "hxllo", "hllo", "heello", "h\nllo", "héllo", "Hello",
    "a*b", "axb", "ab", "a\\b", "a\\*b",
    "user:1", "user:2:profile", "user:", "users:1", "xuser:1",
    "[x]", "x", "]", "^", "-", "b-", "ab]", "a-z", "z",
]  # fmt: skip

# Each named pattern of the issue, with what Redis deletes for it.
NAMED = {
    "h[^e]llo": {"hallo", "hxllo", "h\nllo"},
    "a\\*b": {"a*b"},
    "h?llo": {"hello", "hallo", "hxllo", "h\nllo"},
    "user:*": {"user:1", "user:2:profile", "user:"},
    "*": set(KEYS),
}

# Corners where a hand-written matcher or fnmatch goes wrong; each is checked against Redis.
CORNERS = [
    "h[ae]llo", "h[a-e]llo", "h[e-a]llo", "h[^a-e]llo", "[]x]", "[^]", "[^]]", "[\\]]",
    "[\\^]", "[a\\-z]", "[a-]]", "[-a]", "a?b", "a\\?b", "a\\\\b", "a\\\\*", "\\x", "\\*",
    "**", "*llo", "h*o", "*:*", "?", "??", "[[]x]", "[^x]*", "user:[0-9]",
    "user:[!1]", "h\\[e]llo", "[a-a]b", "*\\*b", "a[*]b", "h[é]llo", "h??llo",
]  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def _redis_matches(server: RedisServer, pattern: str) -> set[str]:
    """What Redis itself matches: SCAN MATCH over the keys stored raw (no prefix)."""
    with server.client() as client:
        return {name.decode() for name in client.scan_iter(match=pattern, count=1000)}


def _local_matches(pattern: str) -> set[str]:
    regex = compile_pattern(pattern)
    return {key for key in KEYS if regex.matches(key.encode())}


@pytest.fixture(scope="module")
def raw_keys(server: RedisServer) -> None:
    with server.client() as client:
        client.flushall()
        client.mset(dict.fromkeys(KEYS, b"1"))


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "must not be empty"),
        ("k" * 257, "at most 256 characters"),
        ("user:[12", "unclosed '\\['"),
        ("[a-]", "unclosed '\\['"),
        ("[^", "unclosed '\\['"),
        ("user:\\", "must not end with a backslash"),
        ("user:\n*", "control characters"),
        ("a\x00", "control characters"),
        ("a\x7f", "control characters"),
        ("[a-é]", "ASCII"),
    ],
)
def test_malformed_patterns_are_rejected_with_a_clear_message(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_pattern(pattern)
    with pytest.raises(ValueError, match=message):
        Cache(cache_settings()).invalidate(pattern)


@pytest.mark.parametrize("pattern", ["*", "k" * 256, "a\\\\", "[\\]]", "[]", *NAMED, *CORNERS])
def test_wellformed_patterns_are_accepted(pattern: str) -> None:
    validate_pattern(pattern)


def test_fnmatch_disagrees_with_redis_which_is_why_there_is_a_matcher() -> None:
    assert not fnmatch.fnmatchcase("hallo", "h[^e]llo")
    assert fnmatch.fnmatchcase("a\\xb", "a\\*b")
    assert _local_matches("h[^e]llo") == NAMED["h[^e]llo"]
    assert _local_matches("a\\*b") == NAMED["a\\*b"]


@pytest.mark.redis
@pytest.mark.usefixtures("raw_keys")
@pytest.mark.parametrize("pattern", [*NAMED, *CORNERS])
def test_the_local_matcher_agrees_with_redis(server: RedisServer, pattern: str) -> None:
    assert _local_matches(pattern) == _redis_matches(server, pattern)


@pytest.mark.redis
@pytest.mark.usefixtures("raw_keys")
def test_the_local_matcher_agrees_with_redis_on_random_patterns(server: RedisServer) -> None:
    rng = random.Random(20240611)
    alphabet = ["a", "b", "h", "l", "o", "e", "x", ":", "*", "?", "[", "]", "^", "-", "\\"]
    checked = 0
    while checked < 400:
        pattern = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
        try:
            validate_pattern(pattern)
        except ValueError:
            continue
        assert _local_matches(pattern) == _redis_matches(server, pattern), pattern
        checked += 1


@pytest.mark.redis
@pytest.mark.parametrize("pattern", list(NAMED))
def test_both_modes_delete_the_same_keys(server: RedisServer, pattern: str) -> None:
    with server.client() as client:
        client.flushall()
    deleted: dict[str, set[str]] = {}
    for mode, url in (("memory", None), ("redis", server.url)):
        cache = Cache(cache_settings(url))
        for key in KEYS:
            cache.set(key, key)
        count = cache.invalidate(pattern)
        deleted[mode] = {key for key in KEYS if cache.get(key) is None}
        assert count == len(deleted[mode])
        assert cache.mode == mode
        cache.close()
    assert deleted["memory"] == deleted["redis"] == NAMED[pattern]
