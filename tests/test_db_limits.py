"""Every wait for PostgreSQL ends, whatever the failure: each layer shown on its own, for real.

The app's engine (``shared.db.build_engine``) against real PostgreSQL, through a TCP proxy the
test owns when the server must seem frozen; the server-side timeouts outside any request
deadline (so that only they act), the client-side deadline against a frozen server, and the
kernel's timeouts against dropped packets in a network namespace of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy.exc as sa_exc
from sqlalchemy import Engine, text

from drills.database import libpq_url
from drills.tcp_proxy import TcpProxy
from shared.config import Settings, load_settings
from shared.db import build_engine, unavailable_reason
from shared.db_limits import DeadlineExceeded
from shared.deadline import database_deadline
from tests.support.services import PG_ADMIN_URL, temporary_database

ROOT = Path(__file__).resolve().parent.parent
HOST, PORT = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0].split(":")

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with temporary_database("stratus_limits") as url:
        with psycopg.connect(libpq_url(url), autocommit=True) as connection:
            connection.execute("CREATE TABLE contended (id int PRIMARY KEY)")
            connection.execute("INSERT INTO contended VALUES (1)")
        yield url


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy(HOST, int(PORT)) as running:
        yield running


def settings_for(url: str, deadline: float, **changes: Any) -> Settings:
    return replace(load_settings({}), database_url=url, db_deadline_seconds=deadline, **changes)


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.dispose()


def engine_for(engines: list[Engine], settings: Settings, **options: bool) -> Engine:
    engine = build_engine(settings, **options)
    engines.append(engine)
    return engine


def through(proxy: TcpProxy, url: str) -> str:
    return url.replace(f"{HOST}:{PORT}", f"127.0.0.1:{proxy.port}", 1)


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid


def timed(call: Callable[[], object]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_a_frozen_server_is_given_up_at_the_deadline_and_its_connection_discarded(
    database, proxy, engines
):
    engine = engine_for(engines, settings_for(through(proxy, database), 5))
    before = backend_pid(engine)  # a pooled connection, opened while the server answered
    proxy.freeze()
    try:
        with database_deadline(1.0):
            seconds, error = timed(lambda: backend_pid(engine))
    finally:
        proxy.thaw()
    assert isinstance(error, sa_exc.OperationalError), error
    assert isinstance(error.orig, DeadlineExceeded)
    assert unavailable_reason(error) == "database deadline exceeded"
    assert 0.9 <= seconds < 2.0, seconds
    # The connection it was waiting on is gone: the next request gets a new one.
    assert backend_pid(engine) != before


def test_a_deadline_bounds_the_whole_request_not_each_wait(database, proxy, engines):
    """Two statements of one request share the budget: the second gets what the first left."""
    engine = engine_for(engines, settings_for(through(proxy, database), 5))
    backend_pid(engine)
    with database_deadline(1.5), engine.connect() as connection:
        connection.execute(text("SELECT pg_sleep(1)"))
        proxy.freeze()
        try:
            seconds, error = timed(lambda: connection.execute(text("SELECT 1")))
        finally:
            proxy.thaw()
    assert isinstance(getattr(error, "orig", None), DeadlineExceeded), error
    assert seconds < 1.0, seconds


def test_a_new_connection_to_a_frozen_server_ends_at_the_deadline(database, proxy, engines):
    engine = engine_for(engines, settings_for(through(proxy, database), 5, db_connect_timeout=30))
    proxy.freeze()
    try:
        with database_deadline(2.0):
            seconds, error = timed(lambda: backend_pid(engine))
    finally:
        proxy.thaw()
    assert isinstance(error, sa_exc.OperationalError), error
    assert unavailable_reason(error) == "database unavailable"
    assert 1.5 <= seconds < 4.0, seconds  # libpq's floor is 2 s, not DB_CONNECT_TIMEOUT's 30


def test_past_the_deadline_no_connection_is_even_attempted(database, proxy, engines):
    engine = engine_for(engines, settings_for(through(proxy, database), 5))
    accepted = proxy.connections_accepted
    with database_deadline(0.01) as deadline:
        deadline.remaining()
        time.sleep(0.05)
        seconds, error = timed(lambda: backend_pid(engine))
    assert isinstance(getattr(error, "orig", None), DeadlineExceeded), error
    assert seconds < 0.5
    assert proxy.connections_accepted == accepted


def test_waiting_for_a_pooled_connection_ends_at_the_deadline(database, engines):
    settings = settings_for(database, 5, db_pool_size=1, db_max_overflow=0, db_pool_timeout=30)
    engine = engine_for(engines, settings)
    with engine.connect(), database_deadline(1.0):  # the first holds the only connection
        seconds, error = timed(lambda: backend_pid(engine))
    assert isinstance(error, sa_exc.TimeoutError), error
    assert unavailable_reason(error) == "connection pool exhausted"
    assert 0.9 <= seconds < 2.0, seconds  # not DB_POOL_TIMEOUT's 30 s


def test_the_server_cancels_a_statement_that_outlasts_the_deadline(database, engines):
    engine = engine_for(engines, settings_for(database, 1))
    before = backend_pid(engine)
    with engine.connect() as connection:  # no request deadline: only the server's timeout acts
        seconds, error = timed(lambda: connection.execute(text("SELECT pg_sleep(5)")))
        assert isinstance(error, sa_exc.OperationalError), error
        assert isinstance(error.orig, psycopg.errors.QueryCanceled)
        assert unavailable_reason(error) == "database statement timed out"
        assert 0.9 <= seconds < 2.5, seconds
        connection.rollback()
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
    assert backend_pid(engine) == before  # the connection survived: nothing to discard


def test_a_lock_wait_gives_up_at_half_the_deadline(database, engines):
    engine = engine_for(engines, settings_for(database, 2))
    with psycopg.connect(libpq_url(database)) as holder:
        holder.execute("SELECT * FROM contended WHERE id = 1 FOR UPDATE")  # holds the row lock
        with engine.connect() as connection:
            seconds, error = timed(
                lambda: connection.execute(text("UPDATE contended SET id = 1 WHERE id = 1"))
            )
    assert isinstance(error, sa_exc.OperationalError), error
    assert isinstance(error.orig, psycopg.errors.LockNotAvailable)
    assert unavailable_reason(error) == "database lock wait timed out"
    assert 0.9 <= seconds < 1.8, seconds


def test_the_server_ends_a_transaction_left_idle_and_releases_its_lock(database, engines):
    engine = engine_for(engines, settings_for(database, 0.5))  # idle in transaction: 1 s
    with engine.connect() as connection:
        connection.execute(text("SELECT * FROM contended WHERE id = 1 FOR UPDATE"))
        time.sleep(1.5)
        with psycopg.connect(libpq_url(database), autocommit=True) as other:
            other.execute("SET lock_timeout = 200")
            other.execute("SELECT * FROM contended WHERE id = 1 FOR UPDATE")  # free again
        _, error = timed(lambda: connection.execute(text("SELECT 1")))
    assert isinstance(getattr(error, "orig", None), psycopg.errors.IdleInTransactionSessionTimeout)
    assert error is not None
    assert unavailable_reason(error) == "database connection lost"  # 503, not 500


def test_migrations_run_without_the_statement_timeouts(database, engines):
    engine = engine_for(engines, settings_for(database, 1), statement_timeouts=False)
    with engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "0"
        connection.execute(text("SELECT pg_sleep(1.5)"))


def _namespaces_available() -> list[str] | None:
    """The command prefix that runs a process in a network namespace of its own, if allowed."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    for prefix in (["unshare", "-n"], ["sudo", "-n", "unshare", "-n"]):
        probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return prefix
    return None


def test_dropped_packets_fail_a_connection_within_the_deadline(database, tmp_path):
    """A dead network path: the kernel gives up on unacknowledged data after tcp_user_timeout,
    where libpq's defaults leave a query waiting for about 15 minutes."""
    prefix = _namespaces_available()
    if prefix is None:
        pytest.skip("needs a network namespace (unshare -n as root, or passwordless sudo)")
    socket_path = str(tmp_path / "postgres.sock")
    with TcpProxy(HOST, int(PORT), listen_path=socket_path):
        os.chmod(socket_path, 0o777)
        result = subprocess.run(
            [
                *prefix,
                "env",
                f"PYTHONPATH={ROOT}",
                sys.executable,
                "-m",
                "tests.support.dropped_packets",
                socket_path,
                database.rsplit("/", 1)[1],
                "2",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["keepalive"] == [1, 2, 1, 2000]
    assert "Connection timed out" in outcome["busy_error"]
    assert 1.5 <= outcome["busy_seconds"] < 4.0, outcome
    assert "Connection timed out" in outcome["idle_error"] or "closed" in outcome["idle_error"]
    assert outcome["idle_seconds"] < 4.0, outcome
    assert outcome["plain_still_waiting"] is True, outcome


@pytest.mark.parametrize("deadline", [0.5, 5.0])
def test_the_server_timeouts_follow_the_deadline(database, engines, deadline):
    engine = engine_for(engines, settings_for(database, deadline))
    with engine.connect() as connection:
        shown = [
            connection.execute(text(f"SHOW {name}")).scalar_one()
            for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
        ]
    expected = {0.5: ["500ms", "250ms", "1s"], 5.0: ["5s", "2500ms", "10s"]}
    assert shown == expected[deadline]


def test_concurrent_requests_on_a_frozen_server_each_end_at_their_own_deadline(
    database, proxy, engines
):
    engine = engine_for(engines, settings_for(through(proxy, database), 5, db_pool_size=4))
    for _ in range(4):
        backend_pid(engine)
    proxy.freeze()
    results: list[tuple[float, BaseException | None]] = []

    def request() -> None:
        with database_deadline(1.0):
            results.append(timed(lambda: backend_pid(engine)))

    try:
        threads = [threading.Thread(target=request) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        proxy.thaw()
    assert len(results) == 4
    assert all(seconds < 4.0 and error is not None for seconds, error in results), results
