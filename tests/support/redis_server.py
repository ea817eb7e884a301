"""A private redis-server for tests (drills/redis_server.py; a missing binary skips the test, or
fails it in CI), and settings for a cache under test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import drills.redis_server
from shared.config import Settings, load_settings
from tests.support.services import redis_server_binary


def cache_settings(redis_url: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings for a cache under test (a quick probe interval), never from os.environ."""
    values = {
        "ENVIRONMENT": "test",
        "SECRET_KEY": "s" * 32,
        "JWT_SECRET_KEY": "j" * 32,
        "CACHE_PROBE_INTERVAL_SECONDS": "0.25",
        **({"REDIS_URL": redis_url} if redis_url else {}),
        **(env or {}),
    }
    settings = load_settings(values)
    assert not settings.errors, settings.errors
    return settings


class RedisServer(drills.redis_server.RedisServer):
    def __init__(self, extra_config: Sequence[str] = (), password: str | None = None) -> None:
        super().__init__(extra_config, password, server_binary=redis_server_binary())
