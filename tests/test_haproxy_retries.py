"""The drills' HAProxy re-sends an idempotent request whose server died while processing it to
another server, and never a POST or DELETE (drills/haproxy.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from drills.haproxy import Backend, HAProxy, Server
from drills.haproxy import binary as haproxy_binary
from drills.process import free_port
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parent.parent
SLOW_SECONDS = 3.0


@contextmanager
def server(name: str, delay: float) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.slow_server", str(port), str(delay), name],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port, process
    finally:
        process.kill()
        process.wait(10)


def in_flight_when_its_server_dies(method: str) -> tuple[int, str]:
    """``method`` sent while only the slow server is in rotation, which is then killed (the fast
    one back in rotation): the answer's status and the server that gave it."""
    with ExitStack() as stack:
        dying, process = stack.enter_context(server("dying", SLOW_SECONDS))
        other, _ = stack.enter_context(server("other", 0))
        proxy = stack.enter_context(
            HAProxy([Backend("app", (Server("dying", dying), Server("other", other)))])
        )
        for name in ("dying", "other"):
            proxy.wait_for("app", name, {"UP"}, timeout=10)
        proxy.set_state("app", "other", "maint")
        answers: list[httpx.Response] = []

        def send() -> None:
            body = None if method == "GET" else b'{"title": "x"}'
            with httpx.Client(timeout=30) as http:
                answers.append(http.request(method, proxy.url("app") + "/item", content=body))

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 10
        while not proxy.servers("app")["dying"].sessions:  # until the request is on it
            assert time.monotonic() < deadline, "the request never reached the slow server"
            time.sleep(0.02)
        proxy.set_state("app", "other", "ready")
        process.kill()
        sender.join(30)
    (answer,) = answers
    return answer.status_code, answer.headers.get("x-served-by", "")


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_an_idempotent_request_is_answered_by_another_server(method: str) -> None:
    if haproxy_binary() is None:
        unavailable("haproxy is not installed (Debian package haproxy)")
    assert in_flight_when_its_server_dies(method) == (200, "other")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_request_that_is_not_idempotent_is_never_sent_twice(method: str) -> None:
    if haproxy_binary() is None:
        unavailable("haproxy is not installed (Debian package haproxy)")
    assert in_flight_when_its_server_dies(method) == (502, "dying")
