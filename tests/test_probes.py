"""/healthz and /readyz through devhost: on SQLite, on PostgreSQL, and while the database fails."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from drills.builds import add_migration, additive_column, copy_build
from drills.tcp_proxy import TcpProxy
from scripts.smoke_test import run as smoke_run
from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, app_env, create_superuser, migrate
from tests.support.services import PG_ADMIN_URL, temporary_database

UNAVAILABLE = {"detail": "Service temporarily unavailable"}


def _devhost(env):
    from tests.support.devhost_process import DevhostProcess

    return DevhostProcess(env=env)


def _wait_for_status(url: str, status: int, timeout: float = 10.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, timeout=5)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_probes_on_the_embedded_sqlite_default(tmp_path):
    url = f"sqlite:///{tmp_path / 'probe.db'}"
    migrate(url)
    with _devhost(app_env(url, None)) as server:
        health = httpx.get(f"{server.url}/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "healthy", "version": "test-version"}
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "pass", "migrations": "pass", "config": "pass"},
        }
        assert ready.headers["cache-control"] == "no-store"


def test_readyz_fails_until_migrations_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with _devhost(app_env(url, None, READINESS_CACHE_MS="0")) as server:
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["migrations"] == "fail"
        assert ready.json()["checks"]["database"] == "pass"
        migrate(url)
        assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_a_bad_setting_shows_in_readyz_the_log_and_as_503_on_api_routes(tmp_path):
    url = f"sqlite:///{tmp_path / 'config.db'}"
    migrate(url)
    with _devhost(app_env(url, None, CACHE_TTL_SHORT="abc")) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["config"] == "fail"
        assert "abc" not in ready.text and "CACHE_TTL" not in ready.text
        api = httpx.get(f"{server.url}/api/v1/users/me")
        assert api.status_code == 503
        assert api.json() == UNAVAILABLE
        assert "retry-after" in api.headers
        assert "CACHE_TTL_SHORT must be an integer" in server.output()


@pytest.fixture
def proxied_pg():
    """A migrated PostgreSQL database reached through a proxy the test can freeze or cut."""
    with temporary_database() as url:
        migrate(url)
        host_port = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0]
        host, port = host_port.split(":")
        with TcpProxy(host, int(port)) as proxy:
            proxied = url.replace(host_port, f"127.0.0.1:{proxy.port}")
            yield proxied, proxy


def test_readyz_tells_the_truth_while_postgresql_hangs_and_is_down(proxied_pg):
    url, proxy = proxied_pg
    env = app_env(url, None, READINESS_CACHE_MS="500", DB_CONNECT_TIMEOUT="3")
    with _devhost(env) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200

        proxy.freeze()
        time.sleep(0.6)  # past the cached result
        started = time.monotonic()
        frozen = httpx.get(f"{server.url}/readyz", timeout=10)
        elapsed = time.monotonic() - started
        assert frozen.status_code == 503
        assert frozen.json()["checks"]["database"] == "fail"
        assert elapsed <= 1.5, elapsed
        health = httpx.get(f"{server.url}/healthz", timeout=2)
        assert health.status_code == 200

        proxy.thaw()
        assert _wait_for_status(f"{server.url}/readyz", 200).status_code == 200

        proxy.down()
        time.sleep(0.6)
        started = time.monotonic()
        down = httpx.get(f"{server.url}/readyz", timeout=10)
        assert down.status_code == 503
        assert time.monotonic() - started <= 1.5
        assert httpx.get(f"{server.url}/healthz").status_code == 200

        proxy.up()
        assert _wait_for_status(f"{server.url}/readyz", 200).status_code == 200


def test_a_fresh_process_answers_its_first_readyz_within_the_budget_and_truthfully(proxied_pg):
    """The first round warms imports up; against a hung database its budget, not the 10 s
    connect timeout, ends it; against a healthy one its warm-up does not make it time out."""
    url, proxy = proxied_pg
    env = app_env(url, None, READINESS_CACHE_MS="0", DB_CONNECT_TIMEOUT="10")
    proxy.freeze()
    try:
        with _devhost(env) as server:
            started = time.monotonic()
            frozen = httpx.get(f"{server.url}/readyz", timeout=10)
            elapsed = time.monotonic() - started
            assert frozen.status_code == 503
            assert frozen.json()["checks"]["database"] == "fail"
            assert elapsed < 5, elapsed
    finally:
        proxy.thaw()
    with _devhost(env) as server:
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text


def test_api_routes_answer_503_when_the_database_is_down_or_the_pool_is_exhausted(proxied_pg):
    url, proxy = proxied_pg
    env = app_env(
        url,
        None,
        DB_POOL_SIZE="1",
        DB_MAX_OVERFLOW="0",
        DB_POOL_TIMEOUT="0.5",
        DB_CONNECT_TIMEOUT="2",
    )
    with _devhost(env) as server:
        signup = {"email": f"p-{uuid.uuid4().hex[:6]}@example.com", "password": "password123"}
        assert httpx.post(f"{server.url}/api/v1/users/signup", json=signup).status_code == 200

        proxy.down()
        # The pooled connection the outage broke fails its request (and retires the pool's
        # older connections); the next request finds the server refusing connections.
        for cause in ("database connection lost", "database unavailable"):
            refused = httpx.post(
                f"{server.url}/api/v1/login/access-token",
                data={"username": signup["email"], "password": "password123"},
                timeout=10,
            )
            assert refused.status_code == 503
            assert refused.json() == UNAVAILABLE
            assert refused.headers["retry-after"]
            assert f"{cause}: OperationalError (login_access_token" in server.output()
        proxy.up()

        # One request holds the only connection on a hung server; the next finds no connection.
        proxy.freeze()
        stuck = threading.Thread(
            target=lambda: httpx.post(
                f"{server.url}/api/v1/users/signup",
                json={"email": f"q-{uuid.uuid4().hex[:6]}@example.com", "password": "password123"},
                timeout=30,
            ),
            daemon=True,
        )
        stuck.start()
        time.sleep(0.5)
        exhausted = httpx.post(
            f"{server.url}/api/v1/users/signup",
            json={"email": f"r-{uuid.uuid4().hex[:6]}@example.com", "password": "password123"},
            timeout=10,
        )
        assert exhausted.status_code == 503
        assert exhausted.json() == UNAVAILABLE
        assert "connection pool exhausted" in server.output()
        proxy.thaw()
        stuck.join(timeout=20)


def test_fifty_concurrent_readyz_cost_one_database_probe_per_cache_period(monkeypatch, pg_url):
    """In process, as the worker calls the async function (50 at once on its event loop): count
    the probe queries PostgreSQL runs."""
    import azure.functions as func
    from sqlalchemy import event

    from shared import config, db, readiness
    from tests.support.worker_context import app_functions, invocation_context

    for name, value in app_env(pg_url, None, READINESS_CACHE_MS="2000").items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    readiness.get_probe.cache_clear()
    db.dispose_engine()
    try:
        function = app_functions()["readiness"]
        probes: list[str] = []
        event.listen(
            db.get_engine(),
            "before_cursor_execute",
            lambda conn, cursor, statement, *args: probes.append(statement),
        )

        async def fifty() -> list[int]:
            request = func.HttpRequest("GET", "http://localhost/readyz", body=b"")
            calls = [function(request, invocation_context("readiness")) for _ in range(50)]
            return [response.status_code for response in await asyncio.gather(*calls)]

        statuses = asyncio.run(fifty())
        assert statuses == [200] * 50
        assert probes.count("SELECT 1") == 1
        assert sum("alembic_version" in s for s in probes) == 1
    finally:
        readiness.get_probe.cache_clear()
        config.get_settings.cache_clear()
        db.dispose_engine()


def _migrate_with(build: Path, database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "--settings", "absent.json", "migrate"],
        cwd=build,
        env={**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _smoke(url: str) -> tuple[int, str]:
    out = io.StringIO()
    environ = {"SMOKE_USERNAME": SUPERUSER, "SMOKE_PASSWORD": SUPERUSER_PASSWORD}
    code = smoke_run(url, environ=environ, out=out, err=out, attempts=2, wait=0.2)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def next_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout plus the next release's additive migration, in a copy."""
    build = copy_build(tmp_path_factory.mktemp("next") / "build", "next-build")
    add_migration(build, "next release column", *additive_column("next_note"))
    return build


def test_this_build_stays_ready_on_a_schema_the_next_build_expanded(next_build, redis_url):
    """The previous build after a release migrated (or brought back by a rollback swap):
    /readyz 200 with migrations warn, so the swap warm-up passes, and its smoke test passes."""
    with temporary_database("stratus_expanded") as database:
        _migrate_with(next_build, database)
        env = app_env(database, redis_url, READINESS_CACHE_MS="0")
        create_superuser(env)
        with _devhost(env) as server:
            ready = httpx.get(f"{server.url}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["migrations"] == "warn"
            code, output = _smoke(server.url)
    assert code == 0, output
    readyz = next(line for line in output.splitlines() if line.startswith("PASS readyz"))
    assert "migrations=warn" in readyz and "schema newer than this build" in readyz


def test_the_next_build_is_not_ready_on_the_schema_before_its_migration(next_build, redis_url):
    """New code on an older database: 503, and its smoke test says to run the migrations."""
    with temporary_database("stratus_older") as database:
        migrate(database)  # this build's head: one behind the next build's
        env = app_env(database, redis_url, READINESS_CACHE_MS="0")
        create_superuser(env)
        from tests.support.devhost_process import DevhostProcess

        script = str(next_build / "function_app.py")
        with DevhostProcess(env=env, script=script, cwd=next_build) as server:
            ready = httpx.get(f"{server.url}/readyz", timeout=10)
            assert ready.status_code == 503, ready.text
            assert ready.json()["checks"]["migrations"] == "fail"
            code, output = _smoke(server.url)
    assert code == 1, output
    assert "migrations failed (the schema is behind this build" in output


def test_probes_answer_while_stuck_requests_hold_every_worker_thread(proxied_pg):
    """The runtime's thread pool (2 threads here) is full of invocations waiting on a frozen
    database; the async probes answer from the event loop anyway, liveness at once and
    readiness within its budget, and neither waits for a thread."""
    url, proxy = proxied_pg
    env = app_env(
        url,
        None,
        PYTHON_THREADPOOL_THREAD_COUNT="2",
        DB_DEADLINE_SECONDS="20",
        READINESS_CACHE_MS="0",
    )
    with _devhost(env) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/readyz").status_code == 200
        proxy.freeze()
        stuck: list[int] = []

        def sign_up() -> None:
            body = {"email": f"s-{uuid.uuid4().hex[:8]}@example.com", "password": "password123"}
            stuck.append(
                httpx.post(f"{server.url}/api/v1/users/signup", json=body, timeout=60).status_code
            )

        threads = [threading.Thread(target=sign_up) for _ in range(4)]
        try:
            for thread in threads:
                thread.start()
            time.sleep(1.0)  # both worker threads now wait on PostgreSQL, two more queue
            for _ in range(3):
                started = time.monotonic()
                health = http.get("/healthz")
                assert health.status_code == 200
                assert time.monotonic() - started < 1.0
                started = time.monotonic()
                ready = http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["database"] == "fail"
                assert time.monotonic() - started < 1.5
            assert stuck == []  # the API requests are still waiting
        finally:
            proxy.thaw()
            for thread in threads:
                thread.join(timeout=60)
    assert stuck == [200, 200, 200, 200]


def test_an_outage_is_logged_once_per_cause_not_once_per_request(proxied_pg):
    url, proxy = proxied_pg
    with _devhost(app_env(url, None, DB_CONNECT_TIMEOUT="2")) as server:
        proxy.down()
        try:
            statuses = [
                httpx.post(
                    f"{server.url}/api/v1/users/signup",
                    json={"email": f"o-{n}@example.com", "password": "password123"},
                    timeout=10,
                ).status_code
                for n in range(20)
            ]
        finally:
            proxy.up()
        output = server.output()
    assert statuses == [503] * 20
    assert output.count("database unavailable: OperationalError") == 1, output
