"""A stand-in HTTP service for tests: a ThreadingHTTPServer on a free loopback port, serving on
a daemon thread between ``start()`` and ``close()`` (``with`` does both)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drills.lifecycle import Started


class LoopbackHttpServer(Started):
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.ident is not None:  # shutdown() waits for a serve_forever that runs
            self._server.shutdown()
        self._server.server_close()
