"""Several instances of one app behind HAProxy, sharing PostgreSQL through PgBouncer and one Redis.

The local form of an Elastic Premium Function App scaled out: ``count`` ``manage.py serve``
instances of the same build and settings, HAProxy round-robin in front (health checks on
``/healthz``, idempotent requests retried on another instance), PgBouncer in transaction mode
(``DB_PGBOUNCER=true``) with a server pool smaller than the instances' pools added up, as Azure's
built-in PgBouncer, and a private ``redis-server`` that can be stopped. Everything started here
is stopped here.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from drills.database import PG_ADMIN_URL
from drills.haproxy import Backend, HAProxy, Server
from drills.instance import ServeInstance
from drills.lifecycle import Started
from drills.pgbouncer import PgBouncer
from drills.redis_server import RedisServer

BACKEND = "app"
APP_USER = "stratus_app"


def names(count: int) -> list[str]:
    return list(string.ascii_lowercase[:count])


class ScaleOut(Started):
    def __init__(
        self,
        build: Path,
        *,
        count: int,
        settings: Mapping[str, str],
        database: str,
        pgbouncer_pool: int,
    ) -> None:
        """``settings``: the app settings every instance shares, but for the database and Redis
        this topology provides; ``database``: the name of the database they use."""
        self.build = build
        self.instances = {name: ServeInstance(name) for name in names(count)}
        self.redis = RedisServer()
        password = secrets.token_urlsafe(16)
        host, port = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0].split(":")
        self.pgbouncer = PgBouncer(
            {APP_USER: password},
            backend_host=host,
            backend_port=int(port),
            pool_size=pgbouncer_pool,
        )
        self.settings = {
            **settings,
            "DATABASE_URL": self.pgbouncer.url(APP_USER, database, password),
            "DB_PGBOUNCER": "true",
            "REDIS_URL": self.redis.url,
        }
        servers = tuple(Server(name, i.port) for name, i in self.instances.items())
        self.haproxy = HAProxy([Backend(BACKEND, servers)])

    @property
    def url(self) -> str:
        return self.haproxy.url(BACKEND)

    def start(self) -> None:
        self.redis.start()
        self.pgbouncer.start()
        with ThreadPoolExecutor(len(self.instances)) as pool:
            for started in [pool.submit(self.start_instance, name) for name in self.instances]:
                started.result()
        self.haproxy.start()
        for name in self.instances:
            self.haproxy.wait_for(BACKEND, name, {"UP"}, timeout=10)

    def close(self) -> None:
        self.haproxy.close()
        for instance in self.instances.values():
            instance.stop()
        self.pgbouncer.close()
        self.redis.close()

    def start_instance(self, name: str) -> None:
        self.instances[name].start(self.build, self.settings)

    def kill(self, name: str) -> None:
        self.instances[name].kill()

    def in_rotation(self, count: int) -> None:
        """The first ``count`` instances take requests, the others none (HAProxy maintenance)."""
        for index, name in enumerate(self.instances):
            self.haproxy.set_state(BACKEND, name, "ready" if index < count else "maint")
        for name in list(self.instances)[:count]:
            self.haproxy.wait_for(BACKEND, name, {"UP"}, timeout=10)

    def pids(self) -> list[int]:
        """The processes of this topology's own: instances, HAProxy, Redis."""
        found = [instance.pid for instance in self.instances.values()]
        found += [self.haproxy.pid, self.redis.pid]
        return [pid for pid in found if pid is not None]

    def memory_mb(self) -> dict[str, float]:
        """Each running instance's resident memory (VmRSS), in MB."""
        found = {}
        for name, instance in self.instances.items():
            if instance.pid is None:
                continue
            for line in Path(f"/proc/{instance.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[name] = round(int(line.split()[1]) / 1024, 1)
        return found
