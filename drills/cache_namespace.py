"""The Redis a drill uses (the tests' one), and removing a drill's namespace from it afterwards."""

from __future__ import annotations

import contextlib
import os

REDIS_URL = os.environ.get("STRATUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_unreachable() -> str | None:
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__})"
    return None


def forget_namespace(redis_url: str, prefix: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError), redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.unlink(key)
