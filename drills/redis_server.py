"""A private ``redis-server`` on a free loopback port: no persistence, stopped by its owner."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from drills.process import LOOPBACK, LoggedProcess, free_port

START_TIMEOUT_SECONDS = 10.0


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self._process: LoggedProcess | None = None

    def __enter__(self) -> Self:
        import redis

        command = [self.binary, "--port", str(self.port), "--bind", LOOPBACK]
        command += ["--save", "", "--appendonly", "no"]
        self._process = LoggedProcess(command, env=os.environ, cwd=Path("/"), name="redis")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with redis.Redis.from_url(self.url, socket_connect_timeout=1) as client:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if not self._process.running or time.monotonic() > deadline:
                        output = self._process.output()[-2000:]
                        self.close()
                        raise RuntimeError(f"redis-server did not start:\n{output}") from None
                    time.sleep(0.02)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None
