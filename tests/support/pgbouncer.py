"""A private PgBouncer (Debian's ``pgbouncer``) in front of the test PostgreSQL server.

Transaction pooling, SCRAM authentication against its own user list, server connections as
``postgres``; the shared PostgreSQL server is only ever a backend.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg

from tests.support.services import PG_ADMIN_URL, free_port, unavailable


class PgBouncer:
    def __init__(self, users: dict[str, str], pool_size: int = 2) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            unavailable("pgbouncer is not installed (Debian package pgbouncer)")
        self.binary = binary
        self.users = users
        self.pool_size = pool_size
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="stratus-pgbouncer-"))
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, user: str, database: str) -> str:
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PgBouncer:
        backend = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0]
        host, port = backend.split(":")
        userlist = "".join(f'"{user}" "{password}"\n' for user, password in self.users.items())
        (self.dir / "userlist.txt").write_text(userlist)
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port} user=postgres\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.dir}\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {self.dir / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "server_round_robin = 0\n"
            "max_client_conn = 200\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
            f"pidfile = {self.dir / 'pgbouncer.pid'}\n"
        )
        command = [self.binary, str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            shutil.chown(self.dir, "postgres")
            for path in self.dir.iterdir():
                shutil.chown(path, "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        user, password = next(iter(self.users.items()))
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1",
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
                    raise AssertionError("pgbouncer did not start: " + self.log()) from None
                time.sleep(0.1)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
