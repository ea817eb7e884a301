"""What the app's libpq settings do on a network path that drops packets, timed for real.

Run as ``unshare -n python -m tests.support.dropped_packets SOCKET DATABASE DEADLINE`` (root in
the new namespace), with PostgreSQL reachable through the Unix socket ``SOCKET`` (a proxy
outside). Two network namespaces joined by a veth pair stand for the app's host and the
database's: a proxy listens on the database side and forwards to ``SOCKET``. The app's engine
(``shared.db.build_engine``, outside any request deadline, so only libpq's and the kernel's
settings act) opens a connection that will be busy and one that will idle, and a plain psycopg
connection (libpq's defaults) stands for the old settings. Then the database side drops every
packet that arrives for the proxy's port (an ``ip rule`` blackhole on its input: the app's
kernel sends and hears nothing, as across a dead path), and this prints one JSON document:

- ``busy_seconds``: how long a query on the busy connection took to fail (tcp_user_timeout);
- ``idle_seconds``: how long the first query on the idle connection took to fail, three
  deadlines later (the same bound: its data goes unacknowledged too);
- ``plain_still_waiting``: whether the plain connection's query was still waiting by then (the
  kernel retransmits for about 15 minutes before it gives up);
- ``keepalive``: the busy connection's socket options (SO_KEEPALIVE, TCP_KEEPIDLE,
  TCP_KEEPINTVL, TCP_USER_TIMEOUT in ms), as libpq set them from the app's settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace

import psycopg
from sqlalchemy import Connection, text

from drills.tcp_proxy import TcpProxy
from shared.config import load_settings
from shared.db import build_engine

APP_ADDRESS, DATABASE_ADDRESS = "10.213.0.1", "10.213.0.2"


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def _database_namespace() -> tuple[subprocess.Popen[bytes], str]:
    """A process holding a second network namespace, joined to this one by a veth pair."""
    holder = subprocess.Popen(["unshare", "-n", "sleep", "120"])
    own = os.readlink("/proc/self/ns/net")
    namespace = f"/proc/{holder.pid}/ns/net"
    while os.readlink(namespace) == own:
        time.sleep(0.01)
    _run("ip", "link", "set", "lo", "up")
    _run(
        "ip", "link", "add", "app0", "type", "veth", "peer", "name", "db0", "netns", str(holder.pid)
    )
    _run("ip", "addr", "add", f"{APP_ADDRESS}/24", "dev", "app0")
    _run("ip", "link", "set", "app0", "up")
    # Established connections would skip the route lookup (early demux), and the blackhole.
    _run("nsenter", f"--net={namespace}", "sysctl", "-qw", "net.ipv4.ip_early_demux=0")
    inside = ("nsenter", f"--net={namespace}", "ip")
    _run(*inside, "link", "set", "lo", "up")
    _run(*inside, "addr", "add", f"{DATABASE_ADDRESS}/24", "dev", "db0")
    _run(*inside, "link", "set", "db0", "up")
    return holder, namespace


def _proxy_in(namespace: str, socket_path: str) -> TcpProxy:
    """The proxy's listening socket belongs to the database's namespace."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    other = os.open(namespace, os.O_RDONLY)
    try:
        os.setns(other, os.CLONE_NEWNET)
        return TcpProxy(socket_path, listen_host=DATABASE_ADDRESS).start()
    finally:
        os.setns(own, os.CLONE_NEWNET)
        os.close(own)
        os.close(other)


def _drop_arrivals(namespace: str, port: int) -> None:
    inside = ("nsenter", f"--net={namespace}", "ip", "rule")
    # The local table answers first unless the blackhole comes before it.
    _run(*inside, "add", "pref", "100", "lookup", "local")
    _run(*inside, "del", "pref", "0", "lookup", "local")
    _run(
        *inside,
        "add",
        "pref",
        "10",
        "iif",
        "db0",
        "ipproto",
        "tcp",
        "dport",
        str(port),
        "blackhole",
    )


def _socket_options(connection: Connection) -> list[int]:
    fileno = connection.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
    with socket.socket(fileno=os.dup(fileno)) as sock:
        return [
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        ]


def _failure_seconds(connection: Connection, statement: str) -> tuple[float, str]:
    started = time.monotonic()
    try:
        connection.execute(text(statement))
    except Exception as exc:
        return time.monotonic() - started, f"{type(exc).__name__}: {exc}".splitlines()[0]
    return time.monotonic() - started, "no error"


def main() -> None:
    socket_path, database, deadline = sys.argv[1], sys.argv[2], float(sys.argv[3])
    holder, namespace = _database_namespace()
    proxy = _proxy_in(namespace, socket_path)
    address = f"{DATABASE_ADDRESS}:{proxy.port}/{database}"
    settings = replace(
        load_settings({}),
        database_url=f"postgresql+psycopg://postgres@{address}",
        db_deadline_seconds=deadline,
    )
    engine = build_engine(settings)
    busy, idle = engine.connect(), engine.connect()
    for connection in (busy, idle):
        connection.execute(text("SELECT 1"))
        connection.commit()  # idle, not idle in a transaction (the server would end that)
    keepalive = _socket_options(busy)
    plain = psycopg.connect(f"postgresql://postgres@{address}")
    plain.execute("SELECT 1")
    plain_done = threading.Event()

    _drop_arrivals(namespace, proxy.port)
    started = time.monotonic()

    def plain_query() -> None:
        with contextlib.suppress(psycopg.Error):
            plain.execute("SELECT 1")
        plain_done.set()

    threading.Thread(target=plain_query, daemon=True).start()
    busy_seconds, busy_error = _failure_seconds(busy, "SELECT 2")
    time.sleep(max(0.0, started + 3 * deadline - time.monotonic()))
    idle_seconds, idle_error = _failure_seconds(idle, "SELECT 2")
    print(
        json.dumps(
            {
                "busy_seconds": round(busy_seconds, 2),
                "busy_error": busy_error,
                "idle_seconds": round(idle_seconds, 2),
                "idle_error": idle_error,
                "plain_still_waiting": not plain_done.is_set(),
                "waited_seconds": round(time.monotonic() - started, 2),
                "keepalive": keepalive,
            }
        ),
        flush=True,
    )
    holder.kill()
    # Both namespaces go with these processes; the plain query never ends, so do not wait.
    os._exit(0)


if __name__ == "__main__":
    main()
