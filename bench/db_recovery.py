"""Pool pre-ping or error classification: which costs less, in steady state and after an outage.

Both keep a connection that an outage broke from failing requests forever; they differ in what
they cost:

- **pre-ping** (``pool_pre_ping``): every checkout first sends an empty query, one round trip
  per request, and a broken connection is replaced before the request uses it;
- **classification** alone: nothing per checkout; the first request on a broken connection fails
  (503, its error classified as a disconnect), which invalidates every connection the pool
  opened before it.

Steady state: the app's engine (``shared.db.build_engine``, the connection settings and deadline
included) against a fresh migrated database, reading one user by key per session as an
authenticated request does, the two variants in alternating blocks (ABAB) in one process; the
ratio is pre-ping over classification.

After an outage: ``--clients`` threads warm the pool, PostgreSQL restarts behind a TCP proxy
(every connection reset, the server back at once) while the app is idle, then the same threads
send one request each, twice; the figure is how many of them failed per variant.

With ``--pgbouncer``, also the cost of PgBouncer mode's server-side timeouts: ``SET LOCAL`` in
every transaction (``DB_PGBOUNCER=true``) against the same engine without them, through a private
PgBouncer in transaction mode (Debian ``pgbouncer``).

Run from the repository root (needs PostgreSQL; about 30 s):

    .venv/bin/python -m bench.db_recovery [--blocks 10] [--sessions 500] [--clients 5] [--pgbouncer]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from drills.tcp_proxy import TcpProxy
from shared.config import Settings, load_settings
from shared.db import build_engine, unavailable_reason
from shared.models import User
from tests.conftest import migrate
from tests.support.services import PG_ADMIN_URL, temporary_database


def engine_for(settings: Settings, *, pre_ping: bool, statement_timeouts: bool = True) -> Engine:
    engine = build_engine(settings, statement_timeouts=statement_timeouts)
    engine.pool._pre_ping = pre_ping  # the one difference between the variants
    return engine


def read_user(engine: Engine, user_id: uuid.UUID) -> None:
    with Session(engine) as session:
        session.execute(select(User).where(User.id == user_id)).scalar_one()


def per_session_us(engine: Engine, user_id: uuid.UUID, sessions: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(sessions):
        read_user(engine, user_id)
    return (time.perf_counter_ns() - started) / sessions / 1e3


def alternating(
    variants: dict[str, Engine], user_id: uuid.UUID, blocks: int, sessions: int
) -> dict[str, float]:
    """The median per-session cost of each variant over ``blocks`` alternating blocks; the
    engines are disposed of afterwards."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for block in range(blocks + 1):  # block 0 warms up and is not counted
            for name, engine in variants.items():
                cost = per_session_us(engine, user_id, sessions)
                if block:
                    times[name].append(cost)
    finally:
        for engine in variants.values():
            engine.dispose()
    return {name: statistics.median(values) for name, values in times.items()}


def seeded_user(url: str) -> uuid.UUID:
    engine = build_engine(replace(load_settings({}), database_url=url))
    try:
        with Session(engine) as session:
            user = User(email=f"bench-{uuid.uuid4().hex[:8]}@example.com", hashed_password="x")
            session.add(user)
            session.commit()
            return user.id
    finally:
        engine.dispose()


def concurrently(clients: int, call: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients)

    def run() -> None:
        barrier.wait()
        try:
            call()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def failures_after_restart(
    settings: Settings, proxy: TcpProxy, user_id: uuid.UUID, clients: int, pre_ping: bool
) -> tuple[int, int, list[str]]:
    """Requests that failed in the first and the second wave after a restart while idle."""
    engine = engine_for(settings, pre_ping=pre_ping)
    try:
        assert not concurrently(clients, lambda: read_user(engine, user_id))  # warm the pool
        proxy.down()  # the server restarts: every open connection is reset
        proxy.up()
        first = concurrently(clients, lambda: read_user(engine, user_id))
        second = concurrently(clients, lambda: read_user(engine, user_id))
        reasons = sorted({str(unavailable_reason(error)) for error in first + second})
        return len(first), len(second), reasons
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--pgbouncer", action="store_true")
    args = parser.parse_args()
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average (1 min) {os.getloadavg()[0]:.2f}"
    )
    command = (
        f".venv/bin/python -m bench.db_recovery --blocks {args.blocks} --sessions "
        f"{args.sessions} --clients {args.clients}{' --pgbouncer' if args.pgbouncer else ''}"
    )
    print(f"Command: {command}")
    with temporary_database("stratus_bench") as url:
        migrate(url)
        user_id = seeded_user(url)
        settings = replace(load_settings({}), database_url=url, db_pool_size=args.clients)
        variants = {
            "pre-ping": engine_for(settings, pre_ping=True),
            "classification": engine_for(settings, pre_ping=False),
        }
        cost = alternating(variants, user_id, args.blocks, args.sessions)
        print(
            f"steady state, one session reading a user by key: pre-ping "
            f"{cost['pre-ping']:.0f} µs, classification {cost['classification']:.0f} µs, "
            f"ratio {cost['pre-ping'] / cost['classification']:.2f}x"
        )
        host, port = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0].split(":")
        with TcpProxy(host, int(port)) as proxy:
            proxied = replace(
                settings, database_url=url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
            )
            for name, pre_ping in (("pre-ping", True), ("classification", False)):
                first, second, reasons = failures_after_restart(
                    proxied, proxy, user_id, args.clients, pre_ping
                )
                print(
                    f"after a restart while idle, {name}: {first} of {args.clients} requests "
                    f"failed in the first wave, {second} in the second ({', '.join(reasons)})"
                )
        if args.pgbouncer:
            pgbouncer_cost(url, user_id, args)


def pgbouncer_cost(url: str, user_id: uuid.UUID, args: argparse.Namespace) -> None:
    from tests.support.pgbouncer import PgBouncer

    user, password = "stratus_bench", "bench-password"
    with PgBouncer({user: password}, pool_size=args.clients) as bouncer:
        database = url.rsplit("/", 1)[1]
        bounced = bouncer.url(user, database).replace(f"{user}@", f"{user}:{password}@")
        settings = replace(
            load_settings({}), database_url=bounced, db_pgbouncer=True, db_pool_size=args.clients
        )
        variants = {
            "SET LOCAL": engine_for(settings, pre_ping=False),
            "none": engine_for(settings, pre_ping=False, statement_timeouts=False),
        }
        cost = alternating(variants, user_id, args.blocks, args.sessions)
    print(
        f"PgBouncer mode, one session reading a user by key: with SET LOCAL timeouts "
        f"{cost['SET LOCAL']:.0f} µs, without {cost['none']:.0f} µs, "
        f"ratio {cost['SET LOCAL'] / cost['none']:.2f}x"
    )


if __name__ == "__main__":
    main()
