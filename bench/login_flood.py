"""``GET /api/v1/users/me`` latency while sign-ins flood the instance: a build before, and this.

Issue 9 measured 12 concurrent sign-ins delaying ``/users/me`` from 18 ms to 5 s on one instance:
the argon2 hashes held every worker thread. This bench runs that flood against two builds in one
run, side by side: ``before`` (a git ref, exported with ``git archive`` into a temporary
directory; ``main`` by default) and ``after`` (this checkout), both through
``manage.py serve`` with the same virtualenv, each on a fresh PostgreSQL database migrated by its
own code, with Redis (its own ``CACHE_PREFIX``).

Per build and round (the order alternates, ABBA), all with wrk:

- ``idle``: ``/users/me`` alone, ``wrk -t1 -c4 -d<duration>s``;
- ``wrk``: the same, while ``wrk -t1 -c12 --timeout 30s -s bench/wrk/login.lua`` posts valid
  sign-ins of another user for the whole run (valid ones: they cost a hash in both builds, where
  wrong ones would be throttled by ``after`` and cost nothing). wrk sends the next sign-in as
  soon as one is answered, and ignores ``Retry-After``: a refused sign-in (503) comes straight
  back, which is harsher than clients that wait as told;
- ``polite``: the same, beside 12 Python clients signing in back to back that wait
  ``Retry-After`` when refused (a well-behaved client).

``/users/me`` runs with ``--timeout 30s`` so that a starved request counts in the latencies
instead of as a timeout. Reported: ``/users/me`` req/s, p50, p99 and max; the flood's sign-ins
answered 200 per second, and those refused per second (``after`` answers 503 past its hashing
queue).

    .venv/bin/python -m bench.login_flood [--before main] [--duration 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.api_throughput import (
    PYTHON,
    ROOT,
    WRK_DIR,
    Server,
    bearer,
    start_process,
    stop_server,
    wait_for_quiet,
)
from bench.host_logs import QUIET_INVOCATION_LOGS
from drills.load import access_token
from tests.conftest import REDIS_URL, SUPERUSER, SUPERUSER_PASSWORD, app_env
from tests.support.services import free_port, temporary_database

FLOOD_CONNECTIONS = 12
READ_CONNECTIONS = 4
FLOOD_EMAIL, FLOOD_PASSWORD = "flood@example.com", "flood-password-1"
READER_EMAIL, READER_PASSWORD = "reader@example.com", "reader-password-1"


@dataclass
class Build:
    label: str
    directory: Path
    server: Server | None = None
    token: str = ""
    rows: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def export(ref: str, into: Path) -> str:
    """``ref``'s tree in ``into``; its abbreviated commit."""
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return commit.stdout.strip()


def manage(build: Build, env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [PYTHON, "manage.py", "--settings", str(build.directory / "absent.json"), *args],
        cwd=build.directory,
        env={**os.environ, **env, "PYTHONPATH": str(build.directory)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{build.label}: manage.py {' '.join(args)}:\n{result.stderr}")


@contextmanager
def served(build: Build) -> Iterator[None]:
    with temporary_database() as database:
        env = app_env(database, REDIS_URL, CACHE_PREFIX=f"bench-flood-{uuid.uuid4().hex[:8]}")
        manage(build, env, "migrate")
        manage(build, env, "create-superuser")
        port = free_port()
        command = [PYTHON, "manage.py", "--settings", str(build.directory / "absent.json")]
        command += ["serve", "--port", str(port)]
        full_env = {
            **os.environ,
            **env,
            **QUIET_INVOCATION_LOGS,
            "PYTHONPATH": str(build.directory),
        }
        build.server = start_process(
            build.label, command, build.directory, full_env, port, "/healthz"
        )
        try:
            with httpx.Client(base_url=build.server.url, timeout=60) as client:
                admin = access_token(client, SUPERUSER, SUPERUSER_PASSWORD)
                for email, password in (
                    (FLOOD_EMAIL, FLOOD_PASSWORD),
                    (READER_EMAIL, READER_PASSWORD),
                ):
                    created = client.post(
                        "/api/v1/users/",
                        json={"email": email, "password": password},
                        headers=bearer(admin),
                    )
                    created.raise_for_status()
                build.token = access_token(client, READER_EMAIL, READER_PASSWORD)
            yield
        finally:
            stop_server(build.server)


def wrk(url: str, connections: int, seconds: float, script: str, *extra: str) -> list[str]:
    return [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "30s",
        "-s", str(WRK_DIR / script), *extra, url,
    ]  # fmt: skip


def figures(output: str) -> dict[str, float]:
    found = re.search(r"^BENCH (\{.*\})$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk gave no summary:\n{output}")
    values: dict[str, float] = json.loads(found.group(1))
    return values


class PoliteFlood:
    """``FLOOD_CONNECTIONS`` clients signing in back to back, each waiting ``Retry-After`` after
    a refusal, as a well-behaved client does (wrk cannot)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.signed_in = self.refused = 0
        self._threads = [
            threading.Thread(target=self._client, daemon=True) for _ in range(FLOOD_CONNECTIONS)
        ]

    def _client(self) -> None:
        form = {"username": FLOOD_EMAIL, "password": FLOOD_PASSWORD}
        with httpx.Client(base_url=self._url, timeout=30) as client:
            while not self._stop.is_set():
                response = client.post("/api/v1/login/access-token", data=form)
                with self._lock:
                    if response.status_code == 200:
                        self.signed_in += 1
                    else:
                        self.refused += 1
                if response.status_code != 200:
                    self._stop.wait(float(response.headers.get("retry-after", "1")))

    def __enter__(self) -> PoliteFlood:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.seconds = time.monotonic() - self._started
        for thread in self._threads:
            thread.join(60)


def measure(build: Build, seconds: float, flood: str) -> dict[str, float]:
    assert build.server is not None
    me = wrk(
        f"{build.server.url}/api/v1/users/me",
        READ_CONNECTIONS,
        seconds,
        "report.lua",
        "-H",
        f"Authorization: Bearer {build.token}",
    )
    flood_env = {
        **os.environ,
        "BENCH_USERNAME": urllib.parse.quote(FLOOD_EMAIL, safe=""),
        "BENCH_PASSWORD": urllib.parse.quote(FLOOD_PASSWORD, safe=""),
    }
    row: dict[str, float] = {}
    polite = None
    with ExitStack() as stack:
        flooding = None
        if flood == "polite":
            polite = stack.enter_context(PoliteFlood(build.server.url))
            time.sleep(1)
        elif flood == "wrk":
            flood_command = wrk(
                f"{build.server.url}/api/v1/login/access-token",
                FLOOD_CONNECTIONS,
                seconds + 2,
                "login.lua",
            )
            flooding = subprocess.Popen(
                flood_command, env=flood_env, stdout=subprocess.PIPE, text=True
            )
            stack.callback(flooding.kill)
            time.sleep(1)  # every flood connection has a sign-in running
        reads = subprocess.run(me, capture_output=True, text=True, check=True)
        if flooding is not None:
            out, _ = flooding.communicate(timeout=seconds + 60)
            logins = figures(out)
            seconds_run = logins["duration_us"] / 1e6
            row["signed_in_per_s"] = (logins["requests"] - logins["status"]) / seconds_run
            row["refused_per_s"] = logins["status"] / seconds_run
    if polite is not None:
        row["signed_in_per_s"] = polite.signed_in / polite.seconds
        row["refused_per_s"] = polite.refused / polite.seconds
    me_figures = figures(reads.stdout)
    row.update(
        me_rps=me_figures["requests"] / (me_figures["duration_us"] / 1e6),
        me_p50_ms=me_figures["p50"] / 1000,
        me_p99_ms=me_figures["p99"] / 1000,
        me_max_ms=me_figures["max"] / 1000,
        me_errors=me_figures["status"] + me_figures["timeout"],
    )
    time.sleep(3)  # the flood's last sign-ins finish before the next run
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git ref of the build to compare with")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-before-") as exported:
        commit = export(args.before, Path(exported))
        builds = [Build(f"before ({args.before} {commit})", Path(exported)), Build("after", ROOT)]
        with ExitStack() as stack:
            for build in builds:
                stack.enter_context(served(build))
            for round_ in range(args.rounds):
                order = builds if round_ % 2 == 0 else builds[::-1]
                for build in order:
                    for kind in ("idle", "wrk", "polite"):
                        wait_for_quiet(10)
                        row = measure(build, args.duration, flood=kind)
                        build.rows.setdefault(kind, []).append(row)
                        print(build.label, kind, json.dumps(row), file=sys.stderr, flush=True)
    report(builds, args)


def report(builds: list[Build], args: argparse.Namespace) -> None:
    print(
        f"\n/users/me ({READ_CONNECTIONS} connections) alone and beside {FLOOD_CONNECTIONS} "
        f"concurrent sign-ins; {args.rounds} rounds of {args.duration:g} s; values per round\n"
    )
    print("| build | run | /users/me req/s | p50 ms | p99 ms | max ms | signed in/s | refused/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for build in builds:
        for kind, rows in build.rows.items():

            def column(name: str, digits: int, rows: list[dict[str, float]] = rows) -> str:
                if name not in rows[0]:
                    return ""
                return " / ".join(f"{row[name]:.{digits}f}" for row in rows)

            print(
                f"| {build.label} | {kind} | {column('me_rps', 0)} | {column('me_p50_ms', 1)} | "
                f"{column('me_p99_ms', 1)} | {column('me_max_ms', 0)} | "
                f"{column('signed_in_per_s', 1)} | {column('refused_per_s', 0)} |"
            )
    before, after = builds
    flood_p99 = [
        b["me_p99_ms"] / a["me_p99_ms"]
        for kind in ("wrk", "polite")
        for b, a in zip(before.rows[kind], after.rows[kind], strict=True)
    ]
    print(
        "\n/users/me p99 during the flood, before / after (wrk rounds, then polite ones): "
        + ", ".join(f"{r:.1f}x" for r in flood_p99)
    )


if __name__ == "__main__":
    main()
