"""``FUNCTIONS_WORKER_PROCESS_COUNT``: serving with several worker processes, as the host does.

On Azure the Functions host starts that many language worker processes per instance (default 1,
at most 10) and spreads invocations over them; timer triggers are scheduled by the host, so each
occurrence runs once per instance, not once per worker. A Python worker runs one interpreter,
one GIL: more processes are how an instance with several vCPUs uses them.

devhost does the same with processes that each run the real worker runtime and serve HTTP on
one listening socket, which this process binds and hands down (the kernel spreads the
connections over the processes that accept them). Worker 0 also runs the timers; the others
serve requests only. This process only supervises: it announces ``Host started`` once every
worker has indexed the app, forwards SIGINT/SIGTERM, and stops them all when one exits.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType

from devhost.errors import DevhostError

logger = logging.getLogger("devhost")

PROCESS_COUNT_SETTING = "FUNCTIONS_WORKER_PROCESS_COUNT"
# The listening socket a worker serves on (also how a restarted worker keeps it).
LISTEN_FD_VARIABLE = "DEVHOST_LISTEN_FD"
MAX_PROCESSES = 10  # Azure's limit for the setting
# Set by this process for the workers it starts; never seen by the app.
WORKER_INDEX_VARIABLE = "DEVHOST_WORKER_INDEX"
READY_FD_VARIABLE = "DEVHOST_READY_FD"
STARTUP_SECONDS = 120.0
_POLL_SECONDS = 0.1


def process_count() -> int:
    """The worker processes to serve with: ``FUNCTIONS_WORKER_PROCESS_COUNT``, 1 if unset."""
    text = os.environ.get(PROCESS_COUNT_SETTING, "").strip()
    if not text:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= MAX_PROCESSES:
        raise DevhostError(
            f"{PROCESS_COUNT_SETTING} must be a whole number from 1 to {MAX_PROCESSES}, "
            f"not {text!r}"
        )
    return int(text)


@dataclass(frozen=True)
class WorkerRole:
    """This process's place among the host's worker processes."""

    index: int
    ready_fd: int | None

    @property
    def runs_timers(self) -> bool:
        return self.index == 0

    @classmethod
    def from_environment(cls) -> WorkerRole | None:
        """The role this process was started with; None when it is the host itself."""
        index = os.environ.pop(WORKER_INDEX_VARIABLE, None)
        ready = os.environ.pop(READY_FD_VARIABLE, None)
        if index is None:
            return None
        return cls(int(index), int(ready) if ready else None)

    def announce_ready(self) -> None:
        """Tell the host this worker serves (once: a restarted worker is not waited for)."""
        if self.ready_fd is not None:
            os.write(self.ready_fd, b"1")
            os.close(self.ready_fd)

    def keep_for_restart(self) -> None:
        """Put the role back in the environment for the process that replaces this one."""
        os.environ[WORKER_INDEX_VARIABLE] = str(self.index)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind((host, port))
    listening.listen(2048)
    listening.set_inheritable(True)
    return listening


class _Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True


def serve_with_processes(
    count: int, host: str, port: int, display_host: str, grace_seconds: float
) -> int:
    """Bind, start ``count`` workers on this command line, supervise them; the exit code."""
    try:
        listening = _listen(host, port)
    except OSError as exc:
        logger.error("Cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        return 1
    bound_port = int(listening.getsockname()[1])
    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    ready_read, ready_write = os.pipe()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(count):
            env = {
                **os.environ,
                LISTEN_FD_VARIABLE: str(listening.fileno()),
                WORKER_INDEX_VARIABLE: str(index),
                READY_FD_VARIABLE: str(ready_write),
            }
            workers.append(
                subprocess.Popen(  # noqa: S603 - this very command line, as a worker
                    [sys.executable, *sys.orig_argv[1:]],
                    env=env,
                    pass_fds=(listening.fileno(), ready_write),
                )
            )
        os.close(ready_write)
        ready_write = -1
        logger.info(
            "%s=%d: worker processes %s",
            PROCESS_COUNT_SETTING,
            count,
            ", ".join(str(worker.pid) for worker in workers),
        )
        if _wait_ready(ready_read, count, workers, stop):
            print(f"Host started on http://{display_host}:{bound_port}", flush=True)
            while not stop.requested and all(worker.poll() is None for worker in workers):
                time.sleep(_POLL_SECONDS)
        return _stop_all(workers, grace_seconds)
    finally:
        if ready_write >= 0:
            os.close(ready_write)
        os.close(ready_read)
        listening.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_ready(
    ready: int, count: int, workers: list[subprocess.Popen[bytes]], stop: _Stop
) -> bool:
    """Whether every worker announced itself before one exited, a stop, or the time limit."""
    announced = 0
    deadline = time.monotonic() + STARTUP_SECONDS
    while announced < count:
        if stop.requested or any(worker.poll() is not None for worker in workers):
            return False
        if time.monotonic() > deadline:
            logger.error("Worker processes did not start within %.0f s", STARTUP_SECONDS)
            return False
        readable, _, _ = select.select([ready], [], [], _POLL_SECONDS)
        if readable:
            chunk = os.read(ready, count)
            if not chunk:  # every writer gone: a worker died without a word
                return False
            announced += len(chunk)
    return True


def _stop_all(workers: list[subprocess.Popen[bytes]], grace_seconds: float) -> int:
    """SIGTERM every worker still running, SIGKILL what outlives the grace; the exit code."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 3 * grace_seconds
    for worker in workers:
        try:
            worker.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("Worker process %d did not stop; killed", worker.pid)
            worker.kill()
            worker.wait()
    codes = [worker.returncode for worker in workers]
    return next((code for code in codes if code not in (0, -signal.SIGTERM)), 0)
