"""A private redis-server: a free loopback port, no persistence, always cleaned up.

Drills and tests stop, freeze, pause and restart it at will, so it is never the shared server
on 6379.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from drills.lifecycle import Started
from drills.process import LOOPBACK, free_port

_START_TIMEOUT = 10.0


class RedisServerError(Exception):
    """redis-server is missing or would not start."""


def binary() -> str | None:
    return shutil.which("redis-server")


class RedisServer(Started):
    """``extra_config`` lines go into redis.conf verbatim, e.g. ``rename-command KEYS ""``."""

    def __init__(
        self,
        extra_config: Sequence[str] = (),
        password: str | None = None,
        server_binary: str | None = None,
    ) -> None:
        found = server_binary or binary()
        if found is None:
            raise RedisServerError("redis-server is not installed")
        self.binary = found
        self.password = password
        self.port = free_port()
        assert self.port != 6379, "never the shared Redis"
        self.extra_config = tuple(extra_config)
        self.dir = Path(tempfile.mkdtemp(prefix="stratus-redis-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client(self) -> redis.Redis:
        """A control client that fails at once rather than retrying."""
        return redis.Redis(
            host=LOOPBACK,
            port=self.port,
            password=self.password,
            socket_timeout=5,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
            retry_on_error=[],
        )

    def start(self) -> None:
        assert not self.running
        config = [
            f"port {self.port}",
            f"bind {LOOPBACK}",
            'save ""',
            "appendonly no",
            f'dir "{self.dir}"',
            f'logfile "{self.dir / "redis.log"}"',
            *([f"requirepass {self.password}"] if self.password else []),
            *self.extra_config,
        ]
        conf = self.dir / "redis.conf"
        conf.write_text("\n".join(config) + "\n")
        self._process = subprocess.Popen([self.binary, str(conf)])  # noqa: S603
        deadline = time.monotonic() + _START_TIMEOUT
        with self.client() as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if not self.running or time.monotonic() > deadline:
                        log = self.dir / "redis.log"
                        tail = log.read_text()[-2000:] if log.exists() else ""
                        self.kill()
                        raise RedisServerError(f"redis-server did not start:\n{tail}") from None
                    time.sleep(0.01)

    def stop(self) -> None:
        """SHUTDOWN NOSAVE, the way an operator (or a crash without persistence) would."""
        self.thaw()
        with self.client() as client:
            client.shutdown(nosave=True)
        self._wait()

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._wait()
        self._frozen = False

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a hung host, a GC pause)."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        if self._frozen and self._process is not None:
            os.kill(self._process.pid, signal.SIGCONT)
        self._frozen = False

    def pause(self, milliseconds: int) -> None:
        """CLIENT PAUSE ALL: the server stops serving every client for a while."""
        with self.client() as client:
            client.client_pause(milliseconds)

    def restart(self) -> None:
        """Stop (if running) and start again on the same port, empty."""
        if self.running:
            self.stop()
        self.start()

    def close(self) -> None:
        self.thaw()
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _wait(self) -> None:
        assert self._process is not None
        self._process.wait(timeout=10)
        self._process = None
