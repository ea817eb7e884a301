"""A child process with its output in a log file, stopped gently then firmly; free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class LoggedProcess:
    """``Popen`` with stdout and stderr in a temporary log file, kept until ``close()``."""

    def __init__(
        self, command: Sequence[str], *, env: Mapping[str, str], cwd: Path, name: str
    ) -> None:
        descriptor, log = tempfile.mkstemp(prefix=f"stratus-{name}-", suffix=".log")
        self.log_path = Path(log)
        try:
            self.process = subprocess.Popen(  # noqa: S603
                list(command), env=dict(env), cwd=cwd, stdout=descriptor, stderr=subprocess.STDOUT
            )
        finally:
            os.close(descriptor)  # the child holds its own copy

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(grace)
        return self.process.returncode

    def close(self) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
