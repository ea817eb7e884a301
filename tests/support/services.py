"""Finding the test services: real PostgreSQL and redis-server, skipped or required.

``make test`` on a machine without them skips the service tests with the reason; with
``REQUIRE_SERVICES=1`` (CI) a missing service is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_URL = os.environ.get(
    "STRATUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def require_services() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip, or fail when the services are required."""
    if require_services():
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        unavailable("redis-server is not installed")
    assert path is not None
    return path


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def postgres_reachable() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(_psycopg_url(PG_ADMIN_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({type(exc).__name__})"


@contextmanager
def temporary_database(prefix: str = "stratus_test") -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards. Yields its SQLAlchemy URL."""
    import psycopg

    problem = postgres_reachable()
    if problem:
        unavailable(problem)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _psycopg_url(PG_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
