"""A private PgBouncer (Debian's ``pgbouncer``) in front of a PostgreSQL server.

Transaction pooling (as Azure's built-in PgBouncer), SCRAM authentication against its own user
list, server connections as ``postgres``; the PostgreSQL server is only ever a backend. At most
``pool_size`` server connections per database and user, however many clients connect.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from drills.lifecycle import Started
from drills.process import LOOPBACK, free_port

START_TIMEOUT_SECONDS = 10.0


class PgBouncerError(Exception):
    """PgBouncer is missing or would not start."""


def binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer",) if Path(path).exists()), None
    )


class PgBouncer(Started):
    def __init__(
        self,
        users: dict[str, str],
        *,
        backend_host: str,
        backend_port: int,
        pool_size: int = 2,
        max_client_conn: int = 200,
    ) -> None:
        found = binary()
        if found is None:
            raise PgBouncerError("pgbouncer is not installed (Debian package pgbouncer)")
        self.binary = found
        self.users = users
        self.backend = (backend_host, backend_port)
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="stratus-pgbouncer-"))
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, user: str, database: str, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql+psycopg://{user}{secret}@{LOOPBACK}:{self.port}/{database}"

    def start(self) -> None:
        host, port = self.backend
        userlist = "".join(f'"{user}" "{password}"\n' for user, password in self.users.items())
        (self.dir / "userlist.txt").write_text(userlist)
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port} user=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = {LOOPBACK}\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.dir}\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {self.dir / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "reserve_pool_size = 0\n"
            "server_round_robin = 0\n"
            f"max_client_conn = {self.max_client_conn}\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
            f"pidfile = {self.dir / 'pgbouncer.pid'}\n"
        )
        command = [self.binary, str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            shutil.chown(self.dir, "postgres")
            for path in self.dir.iterdir():
                shutil.chown(path, "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        self._process = subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        user, password = next(iter(self.users.items()))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                with psycopg.connect(
                    host=LOOPBACK,
                    port=self.port,
                    user=user,
                    password=password,
                    dbname="postgres",
                    connect_timeout=2,
                ):
                    return
            except psycopg.OperationalError:
                assert self._process is not None
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise PgBouncerError("pgbouncer did not start: " + self.log()) from None
                time.sleep(0.1)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        shutil.rmtree(self.dir, ignore_errors=True)
