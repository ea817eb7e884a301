"""Every wait for PostgreSQL bounded, whatever the failure, with what each layer offers.

- A frozen server (or a stalled path that still acknowledges): its kernel ACKs every byte, so
  only the client can give up. Each wait of a connection on the server ends at the database
  deadline (``shared.deadline``); the connection is then closed, never reused, and the request
  answers 503.
- Dropped packets: ``tcp_user_timeout`` makes the kernel fail a connection whose data stays
  unacknowledged (instead of retransmitting for about 15 minutes); keepalives find a dead peer
  while a connection idles in the pool.
- A server that answers, but slowly, or a lock: ``statement_timeout`` and ``lock_timeout`` stop
  the statement on the server, ``idle_in_transaction_session_timeout`` ends a transaction whose
  client went quiet (its locks with it). Passed as libpq ``options``; PgBouncer refuses that
  startup parameter, so in PgBouncer mode each transaction sets them with ``SET LOCAL`` instead
  (session settings would stay on whichever server connection ran them).
- A new connection: ``connect_timeout``, cut to what the deadline leaves (libpq waits at least
  2 s); waiting for a pooled connection: ``DB_POOL_TIMEOUT``, cut the same way.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen
from psycopg.rows import TupleRow
from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

from shared import deadline
from shared.config import Settings

RV = TypeVar("RV")

# libpq's floor for connect_timeout (psycopg follows it).
MIN_CONNECT_TIMEOUT = 2
# psycopg's own: how often a wait wakes up to notice Ctrl-C.
WAIT_INTERVAL = 0.1


class DeadlineExceeded(psycopg.OperationalError):
    """The database deadline passed while waiting for PostgreSQL."""


class DeadlineConnection(psycopg.Connection[TupleRow]):
    """psycopg's connection, whose every wait on the server ends at the database deadline.

    ``wait`` is where psycopg blocks for the server (statements, fetches, commit, rollback):
    past the deadline the protocol is mid-exchange, so the connection is closed, which the
    pool sees as a disconnect and discards.
    """

    def wait(
        self, gen: PQGen[RV], interval: float = WAIT_INTERVAL, timeout: float | None = None
    ) -> RV:
        left = deadline.remaining()
        if left is None:
            return super().wait(gen, interval, timeout)
        bound = max(0.0, left if timeout is None else min(timeout, left))
        try:
            return super().wait(gen, interval, bound)
        except psycopg.OperationalError as exc:
            # psycopg's wait timeout carries no SQLSTATE; a server error does.
            if exc.sqlstate is not None or (deadline.remaining() or 0.0) > 0:
                raise
            self.close()
            raise DeadlineExceeded("database deadline exceeded waiting for the server") from None


class DeadlinePool(QueuePool):
    """QueuePool whose wait for a free connection also ends at the database deadline."""

    @property
    def _timeout(self) -> float:
        left = deadline.remaining()
        configured = self._configured_timeout
        return configured if left is None else max(0.0, min(configured, left))

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._configured_timeout = value


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def server_timeouts(settings: Settings) -> dict[str, int]:
    """The server-side timeouts (milliseconds): no statement outlasts the deadline; a lock wait
    gives up at half of it, with an error of its own (contention, not a slow server); a
    transaction left idle is ended after twice the deadline (its client has given up by then),
    its locks with it."""
    seconds = settings.db_deadline_seconds
    return {
        "statement_timeout": _milliseconds(seconds),
        "lock_timeout": _milliseconds(seconds / 2),
        "idle_in_transaction_session_timeout": _milliseconds(2 * seconds),
    }


def connect_args(settings: Settings, *, statement_timeouts: bool) -> dict[str, Any]:
    """libpq parameters: connect timeout, dead-peer detection and (outside PgBouncer mode) the
    server-side timeouts."""
    seconds = settings.db_deadline_seconds
    args: dict[str, Any] = {
        "connect_timeout": settings.db_connect_timeout,
        "tcp_user_timeout": _milliseconds(seconds),
        "keepalives": 1,
        "keepalives_idle": max(1, math.ceil(seconds)),
        "keepalives_interval": 1,
        "keepalives_count": 3,
    }
    if statement_timeouts and not settings.db_pgbouncer:
        args["options"] = " ".join(
            f"-c {name}={value}" for name, value in server_timeouts(settings).items()
        )
    return args


def bound_waits(engine: Engine, settings: Settings, *, statement_timeouts: bool) -> None:
    """Open connections as ``DeadlineConnection`` with what the deadline leaves for connecting,
    and in PgBouncer mode set the server-side timeouts in every transaction."""

    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        left = deadline.remaining()
        if left is not None:
            if left <= 0:
                raise DeadlineExceeded("database deadline exceeded before connecting")
            cparams["connect_timeout"] = max(
                MIN_CONNECT_TIMEOUT, min(settings.db_connect_timeout, math.ceil(left))
            )
        return DeadlineConnection.connect(*cargs, **cparams)

    # After any other do_connect listener (the Entra ID password), which only adjusts cparams.
    event.listen(engine, "do_connect", connect)
    if statement_timeouts and settings.db_pgbouncer:
        statement = "; ".join(
            f"SET LOCAL {name} = {value}" for name, value in server_timeouts(settings).items()
        )

        def set_local(connection: Any) -> None:
            # On psycopg's connection itself: it opens the transaction, and SQLAlchemy's own
            # statement machinery would double this round trip's cost.
            connection.connection.driver_connection.execute(statement)

        event.listen(engine, "begin", set_local)
