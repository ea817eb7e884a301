"""The app under devhost, seen through its cache: stats, modes, patterns and log lines.

Helpers shared by the end-to-end cache tests (test_cache_api, test_cache_drill, test_scale_out);
every wait is bounded and fails with what it last saw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

from tests.support.api import Account, Api
from tests.support.devhost_process import DevhostProcess

STATS = "/api/v1/cache/stats"
CLEAR = "/api/v1/cache/clear"
COUNTERS = ("hits", "misses", "errors", "invalid", "fallback_activations", "reconnects")


@contextmanager
def served(
    env: dict[str, str], superuser: str, password: str
) -> Iterator[tuple[DevhostProcess, Api]]:
    """devhost on ``env`` and a client signed in as the superuser (who must exist already)."""
    with DevhostProcess(env=env) as server, Api(server.url, superuser, password, env) as api:
        yield server, api


def pattern_path(pattern: str) -> str:
    """The invalidation route for ``pattern``, percent-encoded: '/' too, and '.' so that a client
    does not resolve ``..`` as a dot segment."""
    return "/api/v1/cache/" + quote(pattern, safe="").replace(".", "%2E")


def stats(api: Api) -> dict[str, Any]:
    response = api.request("GET", STATS, headers=api.admin.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def process_counts(figures: dict[str, Any]) -> dict[str, int]:
    return {name: int(figures[name]["process"]) for name in COUNTERS}


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """How much each process counter moved between two stats reads (zeros left out)."""
    old, new = process_counts(before), process_counts(after)
    return {name: new[name] - old[name] for name in COUNTERS if new[name] != old[name]}


def entries(figures: dict[str, Any]) -> int:
    """Keys in the namespace: Redis's count in redis mode, the local store's without Redis."""
    if figures["redis_configured"]:
        keys = figures["keys"]["cluster"]
        assert keys is not None, figures
        return int(keys)
    return int(figures["local_size"]["process"])


def timestamp(value: str | None) -> float:
    """A stats ISO timestamp as seconds since the epoch (comparable with ``time.time()``)."""
    assert value is not None
    return datetime.fromisoformat(value).timestamp()


def wait_for_mode(api: Api, mode: str, timeout: float = 5.0, poll: float = 0.05) -> dict[str, Any]:
    """Poll the stats (as the superuser) until the cache reports ``mode``; those stats."""
    deadline = time.monotonic() + timeout
    while True:
        figures = stats(api)
        if figures["mode"] == mode:
            return figures
        if time.monotonic() > deadline:
            raise AssertionError(f"cache not in {mode} mode within {timeout} s: {figures}")
        time.sleep(poll)


def wait_for_output(
    server: DevhostProcess, text: str, since: int = 0, timeout: float = 5.0, count: int = 1
) -> str:
    """The process output from offset ``since`` once ``text`` occurs ``count`` times in it."""
    deadline = time.monotonic() + timeout
    while True:
        output = server.output()[since:]
        if output.count(text) >= count:
            return output
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{text!r} not seen {count} time(s) within {timeout} s; output:\n{output[-4000:]}"
            )
        time.sleep(0.05)


def create_item(api: Api, account: Account, title: str) -> dict[str, Any]:
    response = api.request("POST", "/api/v1/items/", json={"title": title}, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def list_items(api: Api, account: Account) -> dict[str, Any]:
    response = api.request("GET", "/api/v1/items/", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def me(api: Api, account: Account) -> dict[str, Any]:
    response = api.request("GET", "/api/v1/users/me", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
