"""SQLAlchemy engine (one per process, created on first use) and per-invocation sessions."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy.exc as sa_exc
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings, get_settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None


def build_engine(settings: Settings, *, statement_timeouts: bool = True) -> Engine:
    """An engine configured from settings: pooled PostgreSQL (psycopg 3) or a SQLite file.

    Every wait on PostgreSQL is bounded (``shared.db_limits``); ``statement_timeouts=False``
    leaves out the server-side statement and lock timeouts, for migrations, whose statements
    may rightly run long.
    """
    if settings.is_sqlite:
        engine = create_engine(
            settings.database_url,
            connect_args={"check_same_thread": False, "timeout": 15},
            pool_pre_ping=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    from shared.db_limits import DeadlinePool, bound_waits, connect_args

    args = connect_args(settings, statement_timeouts=statement_timeouts)
    args["application_name"] = f"stratus-{settings.app_version}"[:63]
    if settings.db_pgbouncer:
        # PgBouncer in transaction mode hands each transaction a different server connection,
        # so server-side prepared statements must never be created.
        args["prepare_threshold"] = None
    engine = create_engine(
        settings.database_url,
        connect_args=args,
        poolclass=DeadlinePool,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # No pre-ping (a round trip per checkout, +20 % per session: bench/db_recovery.py). A
        # connection an outage broke fails its first request with a disconnect (503), which
        # invalidates every connection the pool opened before it (unavailable_reason below).
        pool_pre_ping=False,
        # Below the lifetime of an Entra ID token, so no pooled connection outlives its password.
        pool_recycle=1800,
    )
    if settings.db_entra_auth:
        from shared.azure_auth import use_entra_password

        use_entra_password(engine, settings)
    bound_waits(engine, settings, statement_timeouts=statement_timeouts)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def get_engine() -> Engine:
    global _engine, _sessions
    if _engine is None:
        with _lock:
            if _engine is None:
                engine = build_engine(get_settings())
                _sessions = sessionmaker(engine, expire_on_commit=False)
                _engine = engine
    return _engine


def new_session() -> Session:
    get_engine()
    assert _sessions is not None
    return _sessions()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error (CLI and background work)."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engine() -> None:
    """Drop the pool (tests, and after settings change)."""
    global _engine, _sessions
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _sessions = None


def unavailable_reason(exc: BaseException) -> str | None:
    """Why the database cannot answer, if ``exc`` says so; None for any other error.

    Each reason is a cause an operator can act on (the runbook lists them); any DBAPI error
    that means the server or the connection failed, rather than the statement, is one of them.
    """
    if "azure.core.exceptions" in sys.modules:  # only loaded with DB_ENTRA_AUTH
        from azure.core.exceptions import ClientAuthenticationError

        if isinstance(exc, ClientAuthenticationError):
            return "database token unavailable (Entra ID)"
    if isinstance(exc, sa_exc.TimeoutError):
        return "connection pool exhausted"
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    import psycopg.errors

    from shared.db_limits import DeadlineExceeded

    original = exc.orig
    if isinstance(original, DeadlineExceeded):
        return "database deadline exceeded"
    if isinstance(original, psycopg.errors.QueryCanceled):
        return "database statement timed out"
    if isinstance(original, psycopg.errors.LockNotAvailable):
        return "database lock wait timed out"
    if exc.connection_invalidated:
        return "database connection lost"
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return "database unavailable"
    return None
