"""HAProxy (Debian's ``haproxy``) as the local front door: its config, process and runtime API.

One frontend per backend, each on a free loopback port; servers are health-checked on
``/healthz``; a request that could not connect is retried on another server (``redispatch``),
and so is a GET, HEAD or PUT whose server closed the connection without an answer (it died):
those are idempotent: sent again, they leave the same state. A POST or DELETE is
never sent again once a server may have begun to process it (a repeated DELETE would answer
404 for the change the first one made). The runtime API (an admin socket) switches
servers in and out of rotation without a reload: requests in flight finish where they are, and
each later request, even on a kept-alive client connection, goes to a server in rotation.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from drills.lifecycle import Started
from drills.process import LOOPBACK, LoggedProcess, free_port

AdminState = Literal["ready", "drain", "maint"]
START_TIMEOUT_SECONDS = 10.0


class HAProxyError(Exception):
    """HAProxy is missing, would not start, or refused a runtime command."""


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    enabled: bool = True


@dataclass(frozen=True)
class Backend:
    name: str
    servers: tuple[Server, ...]


@dataclass(frozen=True)
class ServerStatus:
    status: str  # UP, DOWN, MAINT, DRAIN, ... as `show stat` says
    sessions: int  # current sessions (requests in flight, kept-alive connections)


def binary() -> str | None:
    return shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy",) if Path(path).exists()), None
    )


def config(backends: Iterable[Backend], ports: dict[str, int], socket_path: Path) -> str:
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin",
        "    stats timeout 10s",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout check 2s",
        "    retries 3",
        "    retry-on conn-failure empty-response",
        "    option redispatch 1",  # every retry goes to another server
        "    option httpchk",
        "    http-check send meth GET uri /healthz",
        "    http-check expect status 200",
        "    default-server inter 500ms fall 2 rise 1",
    ]
    for backend in backends:
        lines += [
            f"frontend {backend.name}",
            f"    bind {LOOPBACK}:{ports[backend.name]}",
            f"    default_backend {backend.name}",
            f"backend {backend.name}",
            "    balance roundrobin",
            # The whole request is read before the rules run: without it a PUT's body may still
            # be on its way when they do, and it is then never re-sent.
            "    option http-buffer-request",
            "    http-request disable-l7-retry if !METH_GET !METH_PUT",  # METH_GET: GET, HEAD
            "    http-after-response set-header X-Served-By %s",  # which server answered
        ]
        for server in backend.servers:
            disabled = "" if server.enabled else " disabled"
            lines.append(f"    server {server.name} {LOOPBACK}:{server.port} check{disabled}")
    return "\n".join(lines) + "\n"


class HAProxy(Started):
    def __init__(self, backends: Sequence[Backend]) -> None:
        found = binary()
        if found is None:
            raise HAProxyError("haproxy is not installed (Debian package haproxy)")
        self.binary = found
        self.backends = tuple(backends)
        self.ports = {backend.name: free_port() for backend in self.backends}
        self.dir = Path(tempfile.mkdtemp(prefix="stratus-haproxy-"))
        self.socket_path = self.dir / "admin.sock"
        self._process: LoggedProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._process.process.pid if self._process is not None else None

    def url(self, backend: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[backend]}"

    def start(self) -> None:
        path = self.dir / "haproxy.cfg"
        path.write_text(config(self.backends, self.ports, self.socket_path))
        self._process = LoggedProcess(
            [self.binary, "-db", "-f", str(path)], env=os.environ, cwd=self.dir, name="haproxy"
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._answers():
            if not self._process.running or time.monotonic() > deadline:
                raise HAProxyError(f"haproxy did not start:\n{self._process.output()[-2000:]}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            self.command("show info")
        except (OSError, HAProxyError):
            return False
        return True

    def command(self, line: str) -> str:
        """One runtime API command; its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(str(self.socket_path))
            connection.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def set_state(self, backend: str, server: str, state: AdminState) -> None:
        answer = self.command(f"set server {backend}/{server} state {state}").strip()
        if answer:
            raise HAProxyError(f"set server {backend}/{server} state {state}: {answer}")

    def servers(self, backend: str) -> dict[str, ServerStatus]:
        """What ``show stat`` says of each server of ``backend``."""
        header, *rows = self.command("show stat").strip().splitlines()
        columns = header.lstrip("# ").split(",")
        found = {}
        for row in rows:
            values = dict(zip(columns, row.split(","), strict=False))
            if values["pxname"] == backend and values["svname"] not in ("FRONTEND", "BACKEND"):
                status = values["status"].split(" ")[0]
                found[values["svname"]] = ServerStatus(status, int(values["scur"] or 0))
        return found

    def wait_for(self, backend: str, server: str, statuses: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.servers(backend)[server]
            if status.status in statuses:
                return
            if time.monotonic() > deadline:
                raise HAProxyError(f"{backend}/{server} is {status.status}, not {statuses}")
            time.sleep(0.05)

    def wait_until_idle(self, backend: str, server: str, timeout: float) -> bool:
        """Whether ``server`` holds no session of ``backend`` within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.servers(backend)[server].sessions:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None
        shutil.rmtree(self.dir, ignore_errors=True)
