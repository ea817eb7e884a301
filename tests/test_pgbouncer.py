"""DB_PGBOUNCER=true against a real PgBouncer in transaction mode (DESIGN.md, Scale-out)."""

import threading
import uuid

import httpx
import psycopg
import pytest

from tests.conftest import app_env, migrate
from tests.support.pgbouncer import PgBouncer
from tests.support.services import temporary_database

APP_USER, APP_PASSWORD = "stratus_app", "bouncer-password"


@pytest.fixture(scope="module")
def bouncer():
    with PgBouncer({APP_USER: APP_PASSWORD}, pool_size=2) as pgbouncer:
        yield pgbouncer


@pytest.fixture(scope="module")
def database():
    with temporary_database() as url:
        migrate(url)
        yield url.rsplit("/", 1)[1]


def _connect(bouncer, database, prepare_threshold):
    connection = psycopg.connect(
        host="127.0.0.1",
        port=bouncer.port,
        user=APP_USER,
        password=APP_PASSWORD,
        dbname=database,
        autocommit=True,
    )
    connection.prepare_threshold = prepare_threshold
    return connection


def test_prepared_statements_break_under_transaction_pooling(bouncer, database):
    """Why the mode exists: a statement prepared on one server connection is missing on the next."""
    with _connect(bouncer, database, 0) as client, _connect(bouncer, database, None) as other:
        client.execute("SELECT 1 + %s", [1])  # prepared on the server connection it got
        with other.transaction():
            other.execute("SELECT 1")  # now holds that server connection
            with pytest.raises(psycopg.errors.InvalidSqlStatementName):
                client.execute("SELECT 1 + %s", [1])


def test_without_prepared_statements_the_same_pattern_works(bouncer, database):
    with _connect(bouncer, database, None) as client, _connect(bouncer, database, None) as other:
        for _ in range(10):
            client.execute("SELECT 1 + %s", [1])
        with other.transaction():
            other.execute("SELECT 1")
            assert client.execute("SELECT 1 + %s", [1]).fetchone() == (2,)


def test_the_app_through_pgbouncer_in_transaction_mode(bouncer, database):
    from tests.support.devhost_process import DevhostProcess

    env = app_env(
        bouncer.url(APP_USER, database),
        None,
        DB_PGBOUNCER="true",
        DB_POOL_SIZE="4",
        DB_MAX_OVERFLOW="0",
    )
    # The password comes from the URL's user via the environment PostgreSQL clients read.
    env["PGPASSWORD"] = APP_PASSWORD
    with DevhostProcess(env=env) as server:
        assert httpx.get(f"{server.url}/readyz").json()["checks"]["database"] == "pass"
        email = f"bouncer-{uuid.uuid4().hex[:6]}@example.com"
        signup = {"email": email, "password": "password123"}
        assert httpx.post(f"{server.url}/api/v1/users/signup", json=signup).status_code == 200
        login = httpx.post(
            f"{server.url}/api/v1/login/access-token",
            data={"username": email, "password": "password123"},
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        failures: list[int] = []

        def work() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                # The same statements many times, from several pooled connections at once:
                # psycopg would prepare them, and the next transaction gets another server link.
                for n in range(25):
                    created = client.post(
                        "/api/v1/items/", json={"title": f"t{n}"}, headers=headers
                    )
                    if created.status_code != 200:
                        failures.append(created.status_code)
                        continue
                    changed = client.put(
                        f"/api/v1/items/{created.json()['id']}",
                        json={"title": "changed"},
                        headers=headers,
                    )
                    if changed.status_code != 200:
                        failures.append(changed.status_code)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert failures == []
        assert "prepared statement" not in server.output()


def _pgbouncer_engine(bouncer, database, **changes):
    from dataclasses import replace

    from shared.config import load_settings
    from shared.db import build_engine

    url = bouncer.url(APP_USER, database).replace(f"{APP_USER}@", f"{APP_USER}:{APP_PASSWORD}@")
    settings = replace(load_settings({}), database_url=url, db_pgbouncer=True, **changes)
    return build_engine(settings)


def test_pgbouncer_refuses_the_server_timeouts_as_startup_options(bouncer, database):
    """Why PgBouncer mode cannot pass them as libpq ``options``, as the direct mode does."""
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        psycopg.connect(
            host="127.0.0.1",
            port=bouncer.port,
            user=APP_USER,
            password=APP_PASSWORD,
            dbname=database,
            options="-c statement_timeout=1000",
        )


def test_in_pgbouncer_mode_every_transaction_carries_the_server_timeouts(bouncer, database):
    """SET LOCAL in each transaction: whichever server connection PgBouncer hands out."""
    import time

    import sqlalchemy.exc as sa_exc
    from sqlalchemy import text

    engine = _pgbouncer_engine(bouncer, database, db_deadline_seconds=1.0)
    try:
        for _ in range(3):  # several transactions, over PgBouncer's 2 server connections
            with engine.connect() as connection:
                shown = [
                    connection.execute(text(f"SHOW {name}")).scalar_one()
                    for name in (
                        "statement_timeout",
                        "lock_timeout",
                        "idle_in_transaction_session_timeout",
                    )
                ]
                assert shown == ["1s", "500ms", "2s"]
        with engine.connect() as connection:
            started = time.monotonic()
            with pytest.raises(sa_exc.OperationalError) as cancelled:
                connection.execute(text("SELECT pg_sleep(5)"))
            assert isinstance(cancelled.value.orig, psycopg.errors.QueryCanceled)
            assert time.monotonic() - started < 2.5
        # Outside a transaction nothing lingers on PgBouncer's server connections.
        with _connect(bouncer, database, None) as plain:
            assert plain.execute("SHOW statement_timeout").fetchone() == ("0",)
    finally:
        engine.dispose()
