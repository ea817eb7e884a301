"""API throughput and latency through ``manage.py serve``, Stratus variants side by side.

One run starts three app processes on one fresh, migrated PostgreSQL database and measures them
one after another with wrk (the DESIGN.md method: ``wrk -t2 -c8 -d10s``, wrk and the app on the
same machine):

- ``redis``: the default configuration, Redis cache (its own CACHE_PREFIX);
- ``memory``: no REDIS_URL, so the in-process cache only;
- ``miss``: Redis cache with ``CACHE_TTL_SHORT=1``, driven by ``bench/wrk/items_miss.lua``,
  which asks for a different ``limit`` (20..1000) on every request: the user owns 20 items, so
  every response holds the same 20 items, and every page read misses (the key only comes round
  again after its entry expired). This is the uncached cost of ``GET /api/v1/items/`` (plus one
  Redis GET that misses and one SET); the cache's own counters, read before and after each run
  through ``GET /api/v1/cache/stats``, show the misses per request.

Routes: ``GET /api/v1/users/me`` (redis, memory), ``GET /api/v1/items/`` with 20 items (redis,
memory, miss) and ``POST /api/v1/login/access-token`` (redis; argon2id at the template's cost),
with argon2 verifications of the same stored hash timed in this process beside it. Each measured
run follows a 2 s warm-up of the same route on the same process. Per run: req/s, latency
percentiles (p95 from wrk's ``done`` hook, ``bench/wrk/report.lua``), errors, cache misses per
request, the app's CPU per request, where the machine's CPU went, and the app's RSS.

The machine may be shared: before each measured run the script waits (``--quiet-wait`` s at
most) for a second under 10 % busy, and a run in which other processes took more than 10 % of
the machine is repeated (``--attempts``, until ``--budget`` s have passed); the least disturbed
attempt is reported, with its share of "other" CPU. Run from the repository root (about 2
minutes on a quiet machine; needs PostgreSQL, Redis and wrk):

    .venv/bin/python -m bench.api_throughput [--duration 10] [--warmup 2] [--profile]

``--profile`` then samples the redis process with py-spy (``--gil``: only the thread holding
the GIL) under the same wrk load of each read route and prints where those samples fall; py-spy
must be installed (``.venv/bin/pip install py-spy``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from bench.host_logs import QUIET_INVOCATION_LOGS
from drills.cpu import machine_ticks, process_ticks
from drills.load import access_token
from tests.conftest import (
    REDIS_URL,
    SUPERUSER,
    SUPERUSER_PASSWORD,
    app_env,
    create_superuser,
    migrate,
)
from tests.support.services import free_port, temporary_database

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = ROOT / "bench" / "wrk"
PYTHON = sys.executable
THREADS, CONNECTIONS = 2, 8
LOGIN_TIMEOUT = "5s"  # a login takes a good fraction of a second; wrk's default is 2 s
STARTUP_TIMEOUT_SECONDS = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
USER_EMAIL = "bench-user@example.com"
USER_PASSWORD = "bench-password-1234"  # a throwaway account in a throwaway database
ITEMS = 20
SERVICES = {"postgres", "redis-server"}
CPUS = os.cpu_count() or 1
POOL_THREADS = min(32, CPUS + 4)  # devhost's pool when PYTHON_THREADPOOL_THREAD_COUNT is unset
DISTURBED_PCT = 10.0  # a run in which other processes took more of the machine is repeated

# DESIGN.md "Performance budget": the template on this machine class, not measured side by side.
REFERENCE = {
    "users/me": {"rps": 690.0, "p99_ms": 22.0},
    "items": {"rps": 380.0, "p99_ms": 36.0},
    "login": {"rps": 12.0},
}
REFERENCE_RSS_MB = 364


@dataclass
class Server:
    label: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server's process and its descendants (the worker processes, with
        FUNCTIONS_WORKER_PROCESS_COUNT above 1)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    children.setdefault(parent, []).append(int(entry.name))
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            queue.extend(children.get(pid, ()))
        return found

    def ticks(self) -> int:
        """utime + stime of the server's processes, in clock ticks."""
        return sum(process_ticks(pid) for pid in self.pids())

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM in kB, from /proc, summed over the server's processes."""
        figures = {"VmRSS": 0, "VmHWM": 0}
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in figures:
                    figures[name] += int(value.split()[0])
        return figures


@dataclass
class Run:
    server: str
    route: str
    command: list[str]
    figures: dict[str, float]
    cache: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    raw: str = ""
    attempts: int = 1

    @property
    def rps(self) -> float:
        """Answered requests per second that were not errors: a sign-in refused at once (503
        past the hashing queue) is not a sign-in."""
        answered = self.figures["requests"] - self.figures["status"]
        return answered / (self.figures["duration_us"] / 1e6)

    @property
    def errors(self) -> int:
        names = ("connect", "read", "write", "status", "timeout")
        return int(sum(self.figures[name] for name in names))

    def ms(self, name: str) -> float:
        return self.figures[name] / 1000


def service_ticks() -> int:
    """CPU of every PostgreSQL and Redis process on the machine, in clock ticks."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in SERVICES:
            total += process_ticks(int(entry.name))
    return total


@contextmanager
def cpu_split(server: Server, into: dict[str, float]) -> Iterator[None]:
    """Share of the machine (all CPUs = 100 %) used by the app, wrk, PostgreSQL + Redis, others."""
    app0, services0 = server.ticks(), service_ticks()
    busy0, total0 = machine_ticks()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    yield
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    app = server.ticks() - app0
    services = service_ticks() - services0
    busy1, total1 = machine_ticks()
    total = total1 - total0
    wrk = (
        children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime
    ) * CLOCK_TICKS
    other = (busy1 - busy0) - app - services - wrk
    into.update(
        app_s=app / CLOCK_TICKS,
        app_pct=100 * app / total,
        wrk_pct=100 * wrk / total,
        services_pct=100 * max(services, 0) / total,
        other_pct=100 * max(other, 0) / total,
        idle_pct=100 * (total - (busy1 - busy0)) / total,
    )


def start_server(label: str, env: dict[str, str], settings: Path) -> Server:
    """Stratus under ``manage.py serve`` on a free port, once ``/healthz`` answers."""
    port = free_port()
    command = [PYTHON, "manage.py", "--settings", str(settings), "serve", "--port", str(port)]
    return start_process(
        label,
        command,
        ROOT,
        {**os.environ, **env, **QUIET_INVOCATION_LOGS, "PYTHONUNBUFFERED": "1"},
        port,
        "/healthz",
    )


def start_process(
    label: str, command: list[str], cwd: Path, env: dict[str, str], port: int, health: str
) -> Server:
    """Start an app server, its output in a temporary log; return once ``health`` answers 200."""
    log = Path(tempfile.mkstemp(prefix=f"bench-{label}-", suffix=".log")[1])
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    server = Server(label, port, process, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{label} server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}{health}", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    stop_server(server)
    raise RuntimeError(f"{label} server did not start in {STARTUP_TIMEOUT_SECONDS} s")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(15)
    server.log.unlink(missing_ok=True)


def seed(server: Server) -> tuple[str, str]:
    """The bench user with its items; (user token, superuser token)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        admin = access_token(client, SUPERUSER, SUPERUSER_PASSWORD)
        created = client.post(
            "/api/v1/users/",
            json={"email": USER_EMAIL, "password": USER_PASSWORD, "full_name": "Bench User"},
            headers=bearer(admin),
        )
        created.raise_for_status()
        token = access_token(client, USER_EMAIL, USER_PASSWORD)
        for n in range(ITEMS):
            item = {"title": f"Item {n}", "description": f"Benchmark item number {n}"}
            client.post("/api/v1/items/", json=item, headers=bearer(token)).raise_for_status()
        page = client.get("/api/v1/items/", headers=bearer(token)).json()
        assert page["count"] == ITEMS, page
    return token, admin


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def timed_get(server: Server, path: str, token: str) -> float:
    """Milliseconds for one request on a new connection."""
    started = time.perf_counter()
    response = httpx.get(server.url + path, headers=bearer(token), timeout=30)
    elapsed = (time.perf_counter() - started) * 1e3
    response.raise_for_status()
    return elapsed


def cache_counts(server: Server, admin: str) -> dict[str, int]:
    response = httpx.get(f"{server.url}/api/v1/cache/stats", headers=bearer(admin), timeout=10)
    response.raise_for_status()
    stats = response.json()
    return {name: int(stats[name]["process"]) for name in ("hits", "misses", "errors")}


def wrk_command(
    server: Server,
    path: str,
    script: str,
    seconds: float,
    token: str | None,
    connections: int = CONNECTIONS,
) -> list[str]:
    threads = min(THREADS, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if script == "login.lua":
        command += ["--timeout", LOGIN_TIMEOUT]
    command += ["-s", str(WRK_DIR / script)]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]
    return [*command, server.url + path]


def wrk_env() -> dict[str, str]:
    """The environment of a wrk run: login.lua reads the user's form fields from it."""
    return {
        **os.environ,
        "BENCH_USERNAME": urllib.parse.quote(USER_EMAIL, safe=""),
        "BENCH_PASSWORD": urllib.parse.quote(USER_PASSWORD, safe=""),
    }


def settle(
    server: Server, result: subprocess.CompletedProcess[str], cpu: dict[str, float]
) -> dict[str, float]:
    """wrk's figures (from report.lua), once the requests still in flight have finished.

    Up to one request per connection is still running when wrk stops (a login takes long): its
    CPU and its count go into ``cpu["app_ms_per_request"]``, not into the share columns.
    """
    stopped = server.ticks()
    wait_until_idle(server)
    tail_s = (server.ticks() - stopped) / CLOCK_TICKS
    found = re.search(r"^BENCH (\{.*\})$", result.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk gave no summary:\n{result.stdout}\n{result.stderr}")
    figures: dict[str, float] = json.loads(found.group(1))
    cpu["app_ms_per_request"] = (cpu["app_s"] + tail_s) * 1e3 / (figures["requests"] + CONNECTIONS)
    return figures


def shown_command(command: Sequence[str]) -> list[str]:
    """The wrk command as printed: no token, no absolute paths, no port."""
    shown = [
        "Authorization: Bearer $TOKEN" if part.startswith("Authorization:") else part
        for part in command
    ]
    shown = [part.replace(str(ROOT) + "/", "") for part in shown]
    shown[-1] = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:$PORT", shown[-1])
    return shown


def run_wrk(
    server: Server,
    route: str,
    path: str,
    script: str,
    seconds: float,
    token: str | None,
    admin: str,
) -> Run:
    command = wrk_command(server, path, script, seconds, token)
    before = cache_counts(server, admin)
    cpu: dict[str, float] = {}
    with cpu_split(server, cpu):
        result = subprocess.run(command, env=wrk_env(), capture_output=True, text=True, check=True)
    figures = settle(server, result, cpu)
    after = cache_counts(server, admin)
    return Run(
        server=server.label,
        route=route,
        command=shown_command(command),
        figures=figures,
        cache={name: after[name] - before[name] for name in after},
        cpu=cpu,
        raw=result.stdout,
    )


@dataclass
class Profile:
    """py-spy samples of the GIL holder: by category, by leaf function, and inclusive."""

    total: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)


APP_FILES = ("shared/", "blueprints/", "devhost/")


def profile(server: Server, path: str, script: str, seconds: float, token: str) -> Profile:
    """Where the app holds the GIL while wrk drives ``path`` (py-spy ``--gil``)."""
    py_spy = shutil.which("py-spy", path=str(Path(PYTHON).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "profile.txt"
        record = [py_spy, "record", "--pid", str(server.process.pid), "--format", "raw", "--gil"]
        record += ["--threads", "--nonblocking", "--rate", "250", "--duration", f"{seconds:g}"]
        record += ["--output", str(output)]
        sampler = subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        subprocess.run(
            wrk_command(server, path, script, seconds, token), capture_output=True, check=True
        )
        sampler.wait(seconds + 30)
        stacks = output.read_text().splitlines()
    result = Profile()
    for line in stacks:
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        thread, *frames = stack.split(";")
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in frames]
        role = "worker thread" if "devhost-worker" in thread else "event-loop thread"
        if "MainThread" not in thread and role != "worker thread":
            role = "other thread"
        result.total += samples
        result.categories[f"{role}: {categorise(frames)}"] += samples
        if frames:
            result.leaves[frames[-1]] += samples
        for frame in set(frames):
            if any(f"({prefix}" in frame for prefix in APP_FILES):
                result.inclusive[frame] += samples
    return result


# Innermost-first: the first rule that matches any frame (from the leaf outwards) names the sample.
CATEGORIES: Sequence[tuple[str, str]] = (
    ("argon2", "argon2 hashing"),
    ("psycopg", "PostgreSQL driver (psycopg)"),
    ("sqlalchemy", "SQLAlchemy ORM/Core"),
    ("redis/", "redis-py client"),
    ("pydantic", "pydantic validation/serialisation"),
    ("jwt/", "PyJWT"),
    ("json/", "json encode/decode"),
    ("shared/cache.py", "Stratus cache client"),
    ("shared/", "Stratus shared (http wrapper, security, reads)"),
    ("blueprints/", "Stratus handlers"),
    ("azure/functions", "azure.functions request/response objects"),
    ("devhost/", "devhost ASGI adapter and invoker"),
    ("concurrent/futures", "thread pool hand-off"),
    ("uvicorn", "uvicorn + httptools"),
    ("asyncio", "asyncio/uvloop event loop"),
    ("uvloop", "asyncio/uvloop event loop"),
    ("threading.py", "threading (locks, conditions)"),
)


def categorise(frames: list[str]) -> str:
    for frame in reversed(frames):
        for needle, name in CATEGORIES:
            if needle in frame:
                return name
    return "other (" + (frames[-1].split(" (")[0] if frames else "?") + ")"


def postgres_version() -> str:
    import psycopg

    admin = os.environ.get("STRATUS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    with psycopg.connect(admin.replace("+psycopg", ""), connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def stored_hash(database_url: str, table: str = "users") -> str:
    """The bench user's password hash, from ``table`` (the template's is called "user")."""
    import psycopg
    from psycopg import sql

    query = sql.SQL("SELECT hashed_password FROM {} WHERE email = %s").format(sql.Identifier(table))
    with psycopg.connect(database_url.replace("+psycopg", ""), connect_timeout=3) as conn:
        row = conn.execute(query, (USER_EMAIL,)).fetchone()
    assert row is not None
    return str(row[0])


def hash_parameters(stored: str) -> str:
    algorithm, version, parameters = stored.split("$")[1:4]
    return f"{algorithm} {version} {parameters}"


def clear_namespace(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix + ":*", count=1000))
        keys.append(prefix + "|stats")
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
    finally:
        client.close()


@dataclass(frozen=True)
class Step:
    route: str
    path: str
    script: str
    server: str


PLAN = (
    Step("users/me", "/api/v1/users/me", "report.lua", "redis"),
    Step("users/me", "/api/v1/users/me", "report.lua", "memory"),
    Step("items", "/api/v1/items/", "report.lua", "redis"),
    Step("items", "/api/v1/items/", "report.lua", "memory"),
    Step("items", "/api/v1/items/", "items_miss.lua", "miss"),
    Step("login", "/api/v1/login/access-token", "login.lua", "redis"),
)


def wait_for_quiet(limit: float) -> float:
    """Wait (at most ``limit`` s) for a second in which the machine is under 10 % busy.

    Other work on the machine takes CPU from the app and wrk alike; the table's "other" column
    still shows what was taken during each run. Returns the last busy fraction seen.
    """
    deadline = time.monotonic() + limit
    while True:
        busy0, total0 = machine_ticks()
        time.sleep(1)
        busy1, total1 = machine_ticks()
        busy = (busy1 - busy0) / max(total1 - total0, 1)
        if busy < 0.10 or time.monotonic() > deadline:
            return busy


def wait_until_idle(server: Server, limit: float = 30) -> None:
    """Until the app has stopped using CPU (logins queued when wrk stopped have finished)."""
    deadline = time.monotonic() + limit
    before = server.ticks()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = server.ticks()
        if now - before <= 1:
            return
        before = now


def argon2_cost(stored: str, concurrency: int, hashes: int) -> tuple[float, float]:
    """Verifications of the bench user's stored hash in this process, ``concurrency`` at a time:
    (verifications per second, CPU ms per verification). argon2-cffi releases the GIL and runs
    the p=4 lanes on threads of its own, so CPU per verification can exceed its wall time."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        assert all(pool.map(lambda _: hasher.verify(stored, USER_PASSWORD), range(hashes)))
    wall, cpu1 = time.perf_counter() - wall0, resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return hashes / wall, cpu * 1e3 / hashes


@dataclass
class Outcome:
    runs: list[Run] = field(default_factory=list)
    first_requests: dict[str, tuple[float, float]] = field(default_factory=dict)
    rss_before_login: dict[str, int] = field(default_factory=dict)
    final_rss: dict[str, dict[str, int]] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    hash_parameters: str = ""
    argon2: dict[int, tuple[float, float]] = field(default_factory=dict)
    elapsed: float = 0.0
    loads: list[float] = field(default_factory=list)


def least_disturbed(
    measure: Callable[[], Run], server: Server, args: argparse.Namespace, started: float
) -> Run:
    """``measure()`` on an idle app and a quiet machine, repeated while other processes took
    more than DISTURBED_PCT of it (``--attempts``, within ``--budget``); the least disturbed."""
    attempts: list[Run] = []
    while True:
        wait_until_idle(server)
        wait_for_quiet(args.quiet_wait)
        attempts.append(measure())
        if (
            attempts[-1].cpu["other_pct"] <= DISTURBED_PCT
            or len(attempts) >= args.attempts
            or time.monotonic() - started > args.budget
        ):
            break
    chosen = min(attempts, key=lambda run: run.cpu["other_pct"])
    chosen.attempts = len(attempts)
    return chosen


def add_run_options(parser: argparse.ArgumentParser, *, attempts: int, budget: float) -> None:
    """The options of a wrk bench: run lengths, and how hard to try for an undisturbed run."""
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per run")
    parser.add_argument(
        "--quiet-wait", type=float, default=10.0, help="max seconds to wait for an idle machine"
    )
    parser.add_argument(
        "--attempts", type=int, default=attempts, help="tries per run while other load disturbs it"
    )
    parser.add_argument(
        "--budget", type=float, default=budget, help="seconds after which no run is repeated"
    )
    parser.add_argument("--verbose", action="store_true", help="print wrk's own reports")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser, attempts=3, budget=150.0)
    parser.add_argument("--profile", action="store_true", help="also sample the app with py-spy")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")

    started = time.monotonic()
    outcome = Outcome(loads=[os.getloadavg()[0]])
    bench_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack, tempfile.TemporaryDirectory() as directory:
        settings = Path(directory) / "absent.local.settings.json"  # no developer settings leak in
        database_url = stack.enter_context(temporary_database("stratus_bench"))
        migrate(database_url)
        envs = {
            "redis": app_env(database_url, REDIS_URL, CACHE_PREFIX=f"stratus-bench-{bench_id}-r"),
            "memory": app_env(database_url, None, CACHE_PREFIX=f"stratus-bench-{bench_id}-m"),
            "miss": app_env(
                database_url,
                REDIS_URL,
                CACHE_PREFIX=f"stratus-bench-{bench_id}-x",
                CACHE_TTL_SHORT="1",
            ),
        }
        for env in envs.values():
            env["APP_VERSION"] = "bench"
            stack.callback(clear_namespace, env["CACHE_PREFIX"])
        create_superuser(envs["redis"])
        servers: dict[str, Server] = {}
        servers["redis"] = start_server("redis", envs["redis"], settings)
        stack.callback(stop_server, servers["redis"])
        token, admin = seed(servers["redis"])
        for label in ("memory", "miss"):  # fresh processes: their first request is cold
            servers[label] = start_server(label, envs[label], settings)
            stack.callback(stop_server, servers[label])
            outcome.first_requests[label] = (
                timed_get(servers[label], "/api/v1/users/me", token),
                timed_get(servers[label], "/api/v1/users/me", token),
            )
        stored = stored_hash(database_url)
        outcome.hash_parameters = hash_parameters(stored)

        for step in PLAN:
            server = servers[step.server]
            if step.route == "login":
                for label, running in servers.items():
                    outcome.rss_before_login[label] = running.status()["VmRSS"]
                wait_for_quiet(args.quiet_wait)
                for concurrency in (1, CPUS, POOL_THREADS):
                    outcome.argon2[concurrency] = argon2_cost(stored, concurrency, 12)
            user_token = None if step.route == "login" else token
            run_wrk(server, step.route, step.path, step.script, args.warmup, user_token, admin)
            outcome.runs.append(
                least_disturbed(
                    functools.partial(
                        run_wrk,
                        server,
                        step.route,
                        step.path,
                        step.script,
                        args.duration,
                        user_token,
                        admin,
                    ),
                    server,
                    args,
                    started,
                )
            )
            wait_until_idle(server)
        outcome.final_rss = {label: server.status() for label, server in servers.items()}
        if args.profile:
            for step in PLAN[0], PLAN[2]:
                wait_for_quiet(args.quiet_wait)
                outcome.profiles[step.route] = profile(
                    servers["redis"], step.path, step.script, args.duration, token
                )
    outcome.elapsed = time.monotonic() - started
    outcome.loads.append(os.getloadavg()[0])
    report(outcome, args.verbose)


def report(outcome: Outcome, verbose: bool) -> None:
    from importlib.metadata import version

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    print(
        f"Python {platform.python_version()}, uvicorn {version('uvicorn')}, SQLAlchemy "
        f"{version('sqlalchemy')}, psycopg {version('psycopg')}, redis-py {version('redis')}, "
        f"argon2-cffi {version('argon2-cffi')}; wrk {wrk_version}; PostgreSQL "
        f"{postgres_version()}; {CPUS} CPUs shared by wrk, the app, PostgreSQL and Redis"
    )
    print(f"password hashes: {outcome.hash_parameters}")
    print(
        f"load average (1 min) before {outcome.loads[0]:.2f}, after {outcome.loads[1]:.2f}; "
        f"run took {outcome.elapsed:.0f} s"
    )
    print()
    print("App processes (each: PYTHONPATH=. python manage.py --settings <absent> serve --port N):")
    print("  redis : REDIS_URL=redis://127.0.0.1:6379/0, CACHE_PREFIX unique (the default setup)")
    print("  memory: REDIS_URL empty (in-process cache only)")
    print(
        "  miss  : as redis, plus CACHE_TTL_SHORT=1, driven by items_miss.lua (every page misses)"
    )
    print("Commands (each after a warm-up run of the same command with a shorter -d):")
    for run in outcome.runs:
        print(f"  [{run.server}] {shlex.join(run.command)}")
    print()
    print(
        "| route | app | req/s | p50 ms | p95 ms | p99 ms | errors | cache misses/req | "
        "app CPU ms/req | CPU: app / wrk / PG+Redis / other / idle % | tries |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for run in outcome.runs:
        requests = run.figures["requests"]
        misses = run.cache.get("misses", 0) / requests if requests else 0.0
        cpu = run.cpu
        print(
            f"| {run.route} | {run.server} | {run.rps:.{1 if run.rps < 100 else 0}f} | "
            f"{run.ms('p50'):.1f} | {run.ms('p95'):.1f} | {run.ms('p99'):.1f} | {run.errors} | "
            f"{misses:.2f} | {cpu['app_ms_per_request']:.2f} | "
            f"{cpu['app_pct']:.0f} / {cpu['wrk_pct']:.0f} / {cpu['services_pct']:.0f} / "
            f"{cpu['other_pct']:.0f} / {cpu['idle_pct']:.0f} | {run.attempts} |"
        )
    print()
    by_key = {(run.route, run.server): run for run in outcome.runs}
    print("Side-by-side ratios (same run):")
    for route, a, b in (
        ("users/me", "memory", "redis"),
        ("items", "memory", "redis"),
        ("items", "redis", "miss"),
        ("items", "memory", "miss"),
    ):
        x, y = by_key[(route, a)], by_key[(route, b)]
        print(
            f"  {route}: {a} / {b} = {x.rps / y.rps:.2f}x req/s; p99 {x.ms('p99'):.1f} vs "
            f"{y.ms('p99'):.1f} ms; app CPU/req {x.cpu['app_ms_per_request']:.2f} vs "
            f"{y.cpu['app_ms_per_request']:.2f} ms"
        )
    login_run = by_key[("login", "redis")]
    print(
        "  login vs argon2 alone: verifying the same stored hash in the bench process, "
        "side by side (12 verifications each):"
    )
    for concurrency, (rate, cpu_ms) in outcome.argon2.items():
        print(f"    {concurrency} at a time: {rate:.1f}/s, {cpu_ms:.0f} ms CPU each")
    best = max(rate for rate, _ in outcome.argon2.values())
    login_cpu = login_run.cpu["app_ms_per_request"]
    print(
        f"    Stratus login: {login_run.rps:.1f}/s, {login_cpu:.0f} ms app CPU each = "
        f"{login_run.rps / best:.2f}x the best argon2-only rate"
    )
    print()
    print("Against DESIGN.md's template figures (same machine class, NOT measured side by side):")
    for route in ("users/me", "items"):
        run = by_key[(route, "redis")]
        reference = REFERENCE[route]
        goal_rps = 2 * reference["rps"]
        met = run.rps >= goal_rps and run.ms("p99") < reference["p99_ms"]
        print(
            f"  {route} (redis): {run.rps:.0f} req/s = {run.rps / reference['rps']:.2f}x the "
            f"template's {reference['rps']:.0f}; p99 {run.ms('p99'):.1f} vs "
            f"{reference['p99_ms']:.0f} ms; goal >= {goal_rps:.0f} req/s with a lower p99: "
            f"{'met' if met else 'MISSED'}"
        )
    print(
        f"  login: {login_run.rps:.1f}/s vs the template's {REFERENCE['login']['rps']:.0f}/s "
        f"= {login_run.rps / REFERENCE['login']['rps']:.2f}x at {outcome.hash_parameters}; "
        f"goal equal (within 10 %): "
        f"{'met' if login_run.rps >= 0.9 * REFERENCE['login']['rps'] else 'MISSED'}"
    )
    print()
    print("App process memory (MB, /proc/<pid>/status; 'end' is after queued work finished):")
    for label, figures in outcome.final_rss.items():
        print(
            f"  {label}: VmRSS before the login run {outcome.rss_before_login[label] / 1024:.0f}, "
            f"at end {figures['VmRSS'] / 1024:.0f}, peak VmHWM {figures['VmHWM'] / 1024:.0f}"
        )
    end_rss = outcome.final_rss["redis"]["VmRSS"] / 1024
    print(
        f"  goal < 150 MB RSS (the template ends at {REFERENCE_RSS_MB} MB): the redis process "
        f"ends at {end_rss:.0f} MB: {'met' if end_rss < 150 else 'MISSED'}"
    )
    print()
    print("First requests on a fresh process (GET /api/v1/users/me, new connection each):")
    for label, (first, second) in outcome.first_requests.items():
        print(f"  {label}: first {first:.1f} ms, second {second:.1f} ms")
    for route, found in outcome.profiles.items():
        print()
        print(
            f"py-spy --gil, redis process, {route} under the same wrk load: {found.total} samples "
            "of the thread holding the GIL"
        )
        print("  by thread and innermost recognised frame:")
        for name, samples in found.categories.most_common(12):
            print(f"    {100 * samples / found.total:5.1f} %  {name}")
        print("  leaf functions (self):")
        for name, samples in found.leaves.most_common(10):
            print(f"    {100 * samples / found.total:5.1f} %  {name}")
        print("  Stratus and devhost functions (inclusive):")
        for name, samples in found.inclusive.most_common(14):
            print(f"    {100 * samples / found.total:5.1f} %  {name}")
    if verbose:
        for run in outcome.runs:
            print()
            print(f"[{run.server}] {run.route}:\n{run.raw}")


if __name__ == "__main__":
    main()
