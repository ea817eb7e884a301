"""A loopback TCP proxy that tests can freeze or take down, to fail a real server safely.

``freeze()`` stops moving bytes in both directions while keeping every connection open, as a
hung server does (new connections are accepted and then hear nothing); ``thaw()`` resumes.
``down()`` resets every connection and stops listening (connection refused); ``up()`` listens
again on the same port. ``reply_delay`` holds every chunk the server sends that long, as a slow
server or a distant one does. The real server behind it is never touched. Either side may be a Unix
socket instead: ``listen_path`` to listen on one, a ``target_host`` that is a path (as in libpq)
to reach one, which lets a proxy cross into another network namespace.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import threading
import time
from types import TracebackType

from drills.process import free_port

_CHUNK = 65536


class TcpProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int = 0,
        port: int | None = None,
        *,
        listen_host: str = "127.0.0.1",
        listen_path: str | None = None,
        reply_delay: float = 0.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.reply_delay = reply_delay
        self.listen_host = listen_host
        self.listen_path = listen_path
        self.port = 0 if listen_path else port or free_port()
        self._running = threading.Event()  # set while bytes may flow
        self._running.set()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.connections_accepted = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self.up()
        return self

    def up(self) -> None:
        if self.listen_path:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.listen_path)
            listener.bind(self.listen_path)
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.listen_host, self.port))
        listener.listen(128)
        listener.settimeout(0.1)
        self._listener = listener
        self._stopping.clear()
        self._spawn(self._accept_loop, listener)

    def down(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _reset(sock)
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads = []

    def freeze(self) -> None:
        self._running.clear()

    def thaw(self) -> None:
        self._running.set()

    def close(self) -> None:
        self.thaw()
        self.down()
        if self.listen_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.listen_path)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections_accepted += 1
            try:
                upstream = self._connect_upstream()
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)

    def _connect_upstream(self) -> socket.socket:
        host = self.target[0]
        if not host.startswith("/"):
            return socket.create_connection(self.target, timeout=5)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.settimeout(5)
        try:
            upstream.connect(host)
        except OSError:
            upstream.close()
            raise
        return upstream

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        selector = selectors.DefaultSelector()
        for sock in peers:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                # While frozen nothing is read, so bytes wait in the kernel like at a hung peer.
                if not self._running.wait(timeout=0.1):
                    continue
                for key, _ in selector.select(timeout=0.1):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(_CHUNK)
                    except BlockingIOError:
                        continue
                    if not data:
                        return
                    if source is upstream and self.reply_delay:
                        time.sleep(self.reply_delay)
                    peers[source].setblocking(True)
                    peers[source].sendall(data)
                    peers[source].setblocking(False)
        except OSError:
            return
        finally:
            selector.close()
            for sock in peers:
                with self._lock:
                    self._sockets.discard(sock)
                sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a crashed server's kernel does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
