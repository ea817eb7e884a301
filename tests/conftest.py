"""Shared fixtures: a migrated PostgreSQL database, Redis, and the app served by devhost."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.services import temporary_database, unavailable

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("STRATUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SUPERUSER = "admin@example.com"
SUPERUSER_PASSWORD = "super-secret-password"
TEST_SECRETS = {
    "SECRET_KEY": "test-secret-key-for-reset-tokens-" + "0123456789" * 4,
    "JWT_SECRET_KEY": "test-jwt-secret-key-for-access-tokens-" + "0123456789" * 4,
}


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


# Names a database migrated elsewhere, which the session then uses as it is: how the schema N-1
# test (tests/test_schema_n_minus_1.py) runs this build's tests against a later build's schema.
GIVEN_DATABASE = "STRATUS_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database at the Alembic head, for this test session (or the given one)."""
    given = os.environ.get(GIVEN_DATABASE)
    if given:
        yield given
        return
    with temporary_database() as url:
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__})")
    finally:
        client.close()
    return REDIS_URL


def app_env(database_url: str, redis_url: str | None, **overrides: str) -> dict[str, str]:
    """Settings for one app process: its own cache namespace, known secrets and superuser."""
    env = {
        "ENVIRONMENT": "development",
        "APP_VERSION": "test-version",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url or "",
        "CACHE_PREFIX": f"stratus-test-{uuid.uuid4().hex[:8]}",
        "CORS_ORIGINS": "http://localhost:5173,https://app.example.com",
        "FIRST_SUPERUSER": SUPERUSER,
        "FIRST_SUPERUSER_PASSWORD": SUPERUSER_PASSWORD,
        "REDIS_RECONNECT_SCHEDULE": "0 */1 * * * *",
        "FRONTEND_HOST": "http://localhost:5173",
        # Off, so that no delete from an earlier test lands in a later one's exact counts; the
        # tests of the second eviction turn it on.
        "CACHE_SECOND_EVICTION_MS": "0",
        # Every test signs in from loopback: per-address limits would couple unrelated tests.
        # The throttling tests set their own (tests/test_security_regressions.py).
        "LOGIN_THROTTLE_ADDRESS_FAILURES": "100000",
        "PASSWORD_RECOVERY_PER_CLIENT": "100000",
        **TEST_SECRETS,
    }
    env.update(overrides)
    return env


def create_superuser(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "create-superuser"],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def api(pg_url: str, redis_url: str) -> Iterator[Api]:
    """The real app on PostgreSQL and Redis, served over HTTP by devhost."""
    from tests.support.devhost_process import DevhostProcess

    env = app_env(pg_url, redis_url)
    create_superuser(env)
    with (
        DevhostProcess(env=env) as server,
        Api(server.url, SUPERUSER, SUPERUSER_PASSWORD, env) as client,
    ):
        yield client
