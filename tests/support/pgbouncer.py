"""A private PgBouncer (drills/pgbouncer.py) in front of the test PostgreSQL server; a missing
binary skips the test, or fails it in CI."""

from __future__ import annotations

import drills.pgbouncer
from tests.support.services import PG_ADMIN_URL, unavailable


class PgBouncer(drills.pgbouncer.PgBouncer):
    def __init__(self, users: dict[str, str], pool_size: int = 2) -> None:
        if drills.pgbouncer.binary() is None:
            unavailable("pgbouncer is not installed (Debian package pgbouncer)")
        host, port = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0].split(":")
        super().__init__(users, backend_host=host, backend_port=int(port), pool_size=pool_size)
