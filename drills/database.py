"""A throwaway PostgreSQL database on the test server, and what a drill reads back from it.

The server is the one of ``STRATUS_TEST_PG_URL`` (default: the tests' local PostgreSQL). The
database gets a fresh name and is dropped afterwards, connections and all.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

PG_ADMIN_URL = os.environ.get(
    "STRATUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class DatabaseUnavailable(Exception):
    """The PostgreSQL server does not answer."""


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def unreachable() -> str | None:
    """None when the server answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(libpq_url(PG_ADMIN_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({type(exc).__name__})"


@contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """A fresh, empty database, dropped afterwards. Yields its SQLAlchemy URL."""
    import psycopg

    problem = unreachable()
    if problem:
        raise DatabaseUnavailable(problem)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = libpq_url(PG_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def revisions(url: str) -> frozenset[str]:
    """The Alembic revisions the database is at."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as connection:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return frozenset(row[0] for row in rows)


def missing_items(url: str, ids: Sequence[str]) -> list[str]:
    """Which of the item ``ids`` (acknowledged writes) the database does not hold."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as connection:
        rows = connection.execute(
            "SELECT id::text FROM items WHERE id = ANY(%s::uuid[])", (list(ids),)
        ).fetchall()
    present = {row[0] for row in rows}
    return [item for item in ids if item not in present]


def items_by_title(url: str, titles: Sequence[str]) -> dict[str, int]:
    """How many items the database holds for each of ``titles`` (absent: none)."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as connection:
        rows = connection.execute(
            "SELECT title, count(*) FROM items WHERE title = ANY(%s) GROUP BY title",
            (list(titles),),
        ).fetchall()
    return dict(rows)


class ConnectionSampler:
    """How many server connections PostgreSQL has to one database, sampled from
    ``pg_stat_activity`` every ``interval`` seconds in a thread (its own connection, to the
    admin database, is not counted)."""

    def __init__(self, database: str, interval: float = 0.1) -> None:
        self.database = database
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(libpq_url(PG_ADMIN_URL), autocommit=True) as connection:
            while not self._stop.is_set():
                row = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                    (self.database,),
                ).fetchone()
                self.samples.append(int(row[0]) if row else 0)
                self._stop.wait(self.interval)


def item_rows(url: str) -> dict[str, tuple[str, str | None]]:
    """Every item in the database: id -> (title, description)."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as connection:
        rows = connection.execute("SELECT id::text, title, description FROM items").fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}
