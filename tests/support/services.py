"""Finding the test services: real PostgreSQL and redis-server, skipped or required.

``make test`` on a machine without them skips the service tests with the reason; with
``REQUIRE_SERVICES=1`` (CI) a missing service is a failure instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from drills.database import PG_ADMIN_URL, throwaway_database, unreachable
from drills.process import free_port

__all__ = [
    "PG_ADMIN_URL",
    "free_port",
    "postgres_unreachable",
    "redis_server_binary",
    "require_services",
    "temporary_database",
    "unavailable",
]


def require_services() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip, or fail when the services are required."""
    if require_services():
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        unavailable("redis-server is not installed")
    assert path is not None
    return path


def postgres_unreachable() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    return unreachable()


@contextmanager
def temporary_database(prefix: str = "stratus_test") -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards. Yields its SQLAlchemy URL."""
    problem = unreachable()
    if problem:
        unavailable(problem)
    with throwaway_database(prefix) as url:
        yield url
