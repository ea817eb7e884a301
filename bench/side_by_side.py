"""Stratus and the reference FastAPI template, side by side in one run, under the same wrk load.

DESIGN.md "Performance budget" asks for a ratio measured side by side. This script starts the
apps on this machine, seeds them the same way over HTTP, and measures the same three routes on
each with the same wrk command, interleaved:

- **Stratus**: ``.venv/bin/python manage.py --settings <absent file> serve --port N``, as in
  ``bench.api_throughput``, in redis mode (the default setup: ``REDIS_URL`` set, its own
  ``CACHE_PREFIX``), on a fresh migrated database with the superuser from ``manage.py
  create-superuser``.
- **template**: an externally obtained checkout of fastapi/full-stack-fastapi-template
  (``--template-dir``; this repository holds none of its code and does not build it). The
  directory must hold the backend (``backend/app/main.py`` or ``app/main.py``) and its own
  virtual environment (``.venv`` with its dependencies). The script prepares a fresh database
  the way the template's ``scripts/prestart.sh`` does (``alembic upgrade head``, then ``python
  app/initial_data.py``, which creates ``FIRST_SUPERUSER``), then runs one uvicorn worker, as
  its ``fastapi run`` does: ``<dir>/.venv/bin/uvicorn app.main:app --host 127.0.0.1 --port N
  --workers 1``, with uvicorn's access log on, as ``fastapi run`` keeps it.
- **template, no access log**: a second template process on the same database, with
  ``--no-access-log`` (Stratus runs with devhost's per-invocation lines quieted, as every
  benchmark does: bench.host_logs), so that the share of the access log is visible;
  ``--no-quiet-template`` leaves it out.

Both apps get the same superuser (``tests.conftest.SUPERUSER``); ``bench.api_throughput.seed``
then creates the bench user through ``POST /api/v1/users/`` and its 20 items through ``POST
/api/v1/items/``. Routes: ``GET /api/v1/users/me``, ``GET /api/v1/items/`` (the user's 20
items) and ``POST /api/v1/login/access-token``, each with ``wrk -t2 -c8 -d10s`` (sign-ins with
``-c2``, within the hashing slots) after a 2 s warm-up of the same command. For each route,
``--rounds`` rounds run the apps in turn, odd rounds in one order and even rounds in the reverse
order. Before each run the script waits
(``--quiet-wait`` s at most) for a quiet second; a run in which other processes took more than
10 % of the machine is repeated (``--attempts``, until ``--budget`` s have passed). The
"PG+Redis" CPU share includes PostgreSQL backends that lived shorter than the run (the
template's SQLAlchemy pool opens and closes connections beyond its pool size under this load).

Reported: the machine, versions and exact commands; per run req/s, p50/p95/p99, errors, the
app's CPU per request and where the machine's CPU went; the Stratus/template ratios; each
process's RSS at the end; the argon2 parameters read from each app's stored hash.

Run from the repository root (needs PostgreSQL, Redis and wrk; about 6 minutes):

    .venv/bin/python -m bench.side_by_side --template-dir /tmp/fastapi-template [--rounds 2]

``--worker-processes N`` serves Stratus with ``FUNCTIONS_WORKER_PROCESS_COUNT=N`` (devhost then
runs N worker processes; the app's CPU and memory are summed over them).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

import httpx

from bench.api_throughput import (
    CONNECTIONS,
    CPUS,
    PYTHON,
    ROOT,
    SERVICES,
    USER_EMAIL,
    USER_PASSWORD,
    Run,
    Server,
    add_run_options,
    clear_namespace,
    cpu_split,
    hash_parameters,
    least_disturbed,
    postgres_version,
    seed,
    settle,
    shown_command,
    start_process,
    start_server,
    stop_server,
    stored_hash,
    wait_until_idle,
    wrk_command,
    wrk_env,
)
from drills.cpu import machine_ticks
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

STRATUS, TEMPLATE, TEMPLATE_QUIET = "Stratus", "template", "template, no access log"
# Sign-ins are CPU-bound (argon2): 2 at a time is what one process on 2 CPUs admits without
# queueing past its hashing slots (PASSWORD_HASH_CONCURRENCY = CPUs), so no run measures
# refusals instead of sign-ins.
LOGIN_CONNECTIONS = 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETUP_TIMEOUT_SECONDS = 120
TEMPLATE_VERSIONS = (
    *("fastapi", "starlette", "uvicorn", "sqlmodel", "sqlalchemy", "pydantic"),
    *("psycopg", "pyjwt", "pwdlib", "argon2-cffi"),
)


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    script: str


ROUTES = (
    Route("users/me", "/api/v1/users/me", "report.lua"),
    Route("items", "/api/v1/items/", "report.lua"),
    Route("login", "/api/v1/login/access-token", "login.lua"),
)


@dataclass(frozen=True)
class Template:
    """Where the externally obtained checkout keeps its backend and its virtual environment."""

    backend: Path
    bin: Path

    @classmethod
    def find(cls, directory: Path) -> Template:
        directory = directory.resolve()
        backends = [directory / "backend", directory]
        backend = next((b for b in backends if (b / "app" / "main.py").is_file()), None)
        if backend is None:
            raise SystemExit(f"{directory}: no backend/app/main.py or app/main.py")
        venvs = [directory / ".venv" / "bin", backend / ".venv" / "bin"]
        bin_dir = next((v for v in venvs if (v / "uvicorn").is_file()), None)
        if bin_dir is None:
            raise SystemExit(f"{directory}: no .venv/bin/uvicorn (install its dependencies)")
        return cls(backend, bin_dir)

    def env(self, database_url: str, secret_key: str) -> dict[str, str]:
        """The template's settings (app/core/config.py), pointed at ``database_url``."""
        url = urllib.parse.urlsplit(database_url)
        return {
            "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONPATH": str(self.backend),
            "PYTHONUNBUFFERED": "1",
            "PROJECT_NAME": "Full Stack FastAPI Project",
            "ENVIRONMENT": "local",
            "SECRET_KEY": secret_key,
            "FIRST_SUPERUSER": SUPERUSER,
            "FIRST_SUPERUSER_PASSWORD": SUPERUSER_PASSWORD,
            "POSTGRES_SERVER": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": urllib.parse.unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": urllib.parse.unquote(url.password or ""),
            "POSTGRES_DB": url.path.lstrip("/"),
        }

    def prepare(self, env: dict[str, str]) -> None:
        """What the template's scripts/prestart.sh does: migrations, then the superuser."""
        for command in (
            [str(self.bin / "alembic"), "upgrade", "head"],
            [str(self.bin / "python"), "app/initial_data.py"],
        ):
            result = subprocess.run(
                command,
                cwd=self.backend,
                env=env,
                capture_output=True,
                text=True,
                timeout=SETUP_TIMEOUT_SECONDS,
            )
            if result.returncode != 0:
                raise RuntimeError(f"{shlex.join(command)} failed:\n{result.stderr}")

    def command(self, port: int, access_log: bool) -> list[str]:
        command = [str(self.bin / "uvicorn"), "app.main:app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", "1"]
        return command if access_log else [*command, "--no-access-log"]

    def start(self, label: str, env: dict[str, str], access_log: bool) -> Server:
        port = free_port()
        command = self.command(port, access_log)
        return start_process(label, command, self.backend, env, port, "/api/v1/utils/health-check/")

    def versions(self) -> str:
        code = (
            "from importlib.metadata import version\n"
            f"for name in {TEMPLATE_VERSIONS!r}:\n"
            "    print(name, version(name))\n"
        )
        result = subprocess.run(
            [str(self.bin / "python"), "-c", code], capture_output=True, text=True, timeout=30
        )
        return ", ".join(result.stdout.split("\n")).strip(", ")


def reaped_service_ticks() -> int:
    """CPU of PostgreSQL and Redis processes that have exited and been reaped, in clock ticks.

    A PostgreSQL backend that lives shorter than a run (a connection opened and closed during
    it, as SQLAlchemy does beyond its pool size) is missing from ``service_ticks``; its CPU
    shows up in its parent's cutime + cstime (/proc/<pid>/stat fields 16 and 17).
    """
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in SERVICES:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[13]) + int(fields[14])
    return total


def measure(server: Server, route: Route, seconds: float, token: str | None) -> Run:
    """One wrk run (``bench.api_throughput``'s command and ``done`` hook) on one app."""
    connections = LOGIN_CONNECTIONS if route.name == "login" else CONNECTIONS
    command = wrk_command(server, route.path, route.script, seconds, token, connections)
    cpu: dict[str, float] = {}
    reaped0, (_, total0) = reaped_service_ticks(), machine_ticks()
    with cpu_split(server, cpu):
        result = subprocess.run(
            command,
            env=wrk_env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    # The template's short-lived PostgreSQL backends are gone before cpu_split reads them.
    reaped_pct = 100 * (reaped_service_ticks() - reaped0) / max(machine_ticks()[1] - total0, 1)
    cpu["services_pct"] += reaped_pct
    cpu["other_pct"] = max(cpu["other_pct"] - reaped_pct, 0.0)
    figures = settle(server, result, cpu)
    return Run(
        server.label, route.name, shown_command(command), figures, cpu=cpu, raw=result.stdout
    )


@dataclass
class Outcome:
    runs: list[tuple[int, Run]] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    final_rss: dict[str, dict[str, int]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    template_versions: str = ""
    elapsed: float = 0.0
    loads: list[float] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--template-dir",
        type=Path,
        required=True,
        help="checkout of fastapi/full-stack-fastapi-template with its own .venv",
    )
    parser.add_argument("--rounds", type=int, default=2, help="measured runs per app and route")
    add_run_options(parser, attempts=2, budget=600.0)
    parser.add_argument(
        "--no-quiet-template",
        dest="quiet_template",
        action="store_false",
        help="do not also run the template without uvicorn's access log",
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=1,
        help="FUNCTIONS_WORKER_PROCESS_COUNT for Stratus (the template keeps one process)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    if not 1 <= args.rounds <= 10 or not 1 <= args.attempts <= 5:
        raise SystemExit("--rounds must be 1..10 and --attempts 1..5")
    if not 1 <= args.worker_processes <= 10:
        raise SystemExit("--worker-processes must be 1..10")
    template = Template.find(args.template_dir)

    started = time.monotonic()
    outcome = Outcome(loads=[os.getloadavg()[0]], template_versions=template.versions())
    bench_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack, tempfile.TemporaryDirectory() as directory:
        settings = Path(directory) / "absent.local.settings.json"  # no developer settings leak in
        stratus_db = stack.enter_context(temporary_database("stratus_bench"))
        template_db = stack.enter_context(temporary_database("tmpl_bench"))
        migrate(stratus_db)
        stratus_env = app_env(stratus_db, REDIS_URL, CACHE_PREFIX=f"stratus-sbs-{bench_id}")
        stratus_env["APP_VERSION"] = "bench"
        stratus_env["FUNCTIONS_WORKER_PROCESS_COUNT"] = str(args.worker_processes)
        stack.callback(clear_namespace, stratus_env["CACHE_PREFIX"])
        create_superuser(stratus_env)
        template_env = template.env(template_db, secrets.token_urlsafe(32))
        template.prepare(template_env)

        servers: dict[str, Server] = {}
        servers[STRATUS] = start_server(STRATUS, stratus_env, settings)
        stack.callback(stop_server, servers[STRATUS])
        outcome.commands[STRATUS] = (
            f"FUNCTIONS_WORKER_PROCESS_COUNT={args.worker_processes} "
            f"{shown_python()} manage.py --settings <absent file> serve --port $PORT"
            "  (cwd: the repository root)"
        )
        variants = {TEMPLATE: True, TEMPLATE_QUIET: False}  # label: uvicorn's access log
        if not args.quiet_template:
            del variants[TEMPLATE_QUIET]
        for label, access_log in variants.items():
            servers[label] = template.start(label, template_env, access_log)
            stack.callback(stop_server, servers[label])
            outcome.commands[label] = (
                shlex.join(template.command(0, access_log))
                .replace(str(template.bin), "<template>/.venv/bin")
                .replace("--port 0", "--port $PORT")
                + "  (cwd: <template>/backend)"
            )
        tokens = {STRATUS: seed(servers[STRATUS])[0], TEMPLATE: seed(servers[TEMPLATE])[0]}
        if TEMPLATE_QUIET in servers:  # same database: the user and items are there already
            with httpx.Client(base_url=servers[TEMPLATE_QUIET].url, timeout=30) as client:
                tokens[TEMPLATE_QUIET] = access_token(client, USER_EMAIL, USER_PASSWORD)
        outcome.hashes = {
            STRATUS: hash_parameters(stored_hash(stratus_db)),
            TEMPLATE: hash_parameters(stored_hash(template_db, "user")),
        }

        labels = list(servers)
        for route in ROUTES:
            for round_index in range(args.rounds):
                order = labels if round_index % 2 == 0 else labels[::-1]
                for label in order:
                    server = servers[label]
                    token = None if route.name == "login" else tokens[label]
                    wait_until_idle(server)
                    measure(server, route, args.warmup, token)
                    chosen = least_disturbed(
                        functools.partial(measure, server, route, args.duration, token),
                        server,
                        args,
                        started,
                    )
                    outcome.runs.append((round_index + 1, chosen))
        for server in servers.values():
            wait_until_idle(server)
        outcome.final_rss = {label: server.status() for label, server in servers.items()}
    outcome.elapsed = time.monotonic() - started
    outcome.loads.append(os.getloadavg()[0])
    report(outcome, args, template)


def shown_python() -> str:
    python = Path(PYTHON)
    return str(python.relative_to(ROOT)) if python.is_relative_to(ROOT) else str(python)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def figure(values: Sequence[float], digits: int) -> str:
    return " / ".join(f"{value:.{digits}f}" for value in values)


def report(outcome: Outcome, args: argparse.Namespace, template: Template) -> None:
    from importlib.metadata import version

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    print(f"Machine: nproc {CPUS}, {cpu_model()}, Linux {platform.release()}")
    print(
        f"  wrk {wrk_version}, PostgreSQL {postgres_version()}; wrk, the apps, PostgreSQL "
        "and Redis share the same CPUs"
    )
    print(
        f"  load average (1 min) before {outcome.loads[0]:.2f}, after {outcome.loads[1]:.2f}; "
        f"run took {outcome.elapsed:.0f} s"
    )
    print(
        f"Stratus: Python {platform.python_version()}, uvicorn {version('uvicorn')}, SQLAlchemy "
        f"{version('sqlalchemy')}, pydantic {version('pydantic')}, redis-py {version('redis')}, "
        f"argon2-cffi {version('argon2-cffi')}"
    )
    print(f"template ({template.backend}): {outcome.template_versions}")
    print()
    print(
        f"App processes ({STRATUS}: {args.worker_processes} worker process(es), the template "
        "one; seeded over HTTP: the same user and 20 items):"
    )
    for label, command in outcome.commands.items():
        print(f"  {label}: {command}")
    print(
        f"  ({STRATUS}: REDIS_URL=redis://127.0.0.1:6379/0 and its own CACHE_PREFIX, the default "
        "setup. template: ENVIRONMENT=local, after `alembic upgrade head` and `python "
        "app/initial_data.py`, as its prestart.sh does; both template processes share one "
        "database.)"
    )
    print(
        f"password hashes: {STRATUS} {outcome.hashes[STRATUS]}; template {outcome.hashes[TEMPLATE]}"
    )
    print()
    print(f"Commands (each after a warm-up run of the same command with -d{args.warmup:g}s):")
    seen: set[str] = set()
    for _, run in outcome.runs:
        line = shlex.join(run.command)
        if line not in seen:
            seen.add(line)
            print(f"  {line}")
    print()
    print(
        "Per run, in the order run (odd rounds run the apps in one order, even rounds in the "
        "reverse order; CPU shares are of the whole machine, PG+Redis includes short-lived "
        "PostgreSQL backends):"
    )
    print(
        "| route | app | round | req/s | p50 ms | p95 ms | p99 ms | errors | app CPU ms/req | "
        "CPU: app / wrk / PG+Redis / other / idle % | tries |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for round_number, run in outcome.runs:
        cpu = run.cpu
        print(
            f"| {run.route} | {run.server} | {round_number} | "
            f"{run.rps:.{1 if run.rps < 100 else 0}f} | {run.ms('p50'):.1f} | "
            f"{run.ms('p95'):.1f} | {run.ms('p99'):.1f} | {run.errors} | "
            f"{cpu['app_ms_per_request']:.2f} | {cpu['app_pct']:.0f} / {cpu['wrk_pct']:.0f} / "
            f"{cpu['services_pct']:.0f} / {cpu['other_pct']:.0f} / {cpu['idle_pct']:.0f} | "
            f"{run.attempts} |"
        )
    labels = list(outcome.final_rss)
    print()
    print(
        f"Side by side: req/s per round (r1 / r2 ...), means of p50 / p95 / p99 in ms, and "
        f"ratios {STRATUS} / <app> of the means over {args.rounds} rounds:"
    )
    header = "| route | app | req/s | p50 / p95 / p99 ms | req/s ratio | p99 ratio |"
    print(header)
    print("|---|---|---:|---|---:|---:|")
    for route in ROUTES:
        runs = {
            label: [
                run for _, run in outcome.runs if run.route == route.name and run.server == label
            ]
            for label in labels
        }
        rps = {label: mean(run.rps for run in found) for label, found in runs.items()}
        p99 = {label: mean(run.ms("p99") for run in found) for label, found in runs.items()}
        digits = 1 if rps[STRATUS] < 100 else 0
        for label in labels:
            latency = " / ".join(
                f"{mean(run.ms(name) for run in runs[label]):.1f}" for name in ("p50", "p95", "p99")
            )
            ratios = (
                "| |"
                if label == STRATUS
                else f"**{rps[STRATUS] / rps[label]:.2f}x** | {p99[STRATUS] / p99[label]:.2f}x |"
            )
            print(
                f"| {route.name} | {label} | {figure([run.rps for run in runs[label]], digits)} "
                f"| {latency} | {ratios}"
            )
    print()
    print(
        "Process memory at the end (MB, /proc/<pid>/status summed over an app's processes, "
        "after queued work finished):"
    )
    rss = {label: figures["VmRSS"] / 1024 for label, figures in outcome.final_rss.items()}
    for label, figures in outcome.final_rss.items():
        ratio = (
            "" if label == STRATUS else f"; {STRATUS} / {label} = {rss[STRATUS] / rss[label]:.2f}x"
        )
        print(f"  {label}: VmRSS {rss[label]:.0f}, peak VmHWM {figures['VmHWM'] / 1024:.0f}{ratio}")
    if args.verbose:
        for round_number, run in outcome.runs:
            print()
            print(f"[{run.server}] {run.route}, round {round_number}:\n{run.raw}")


if __name__ == "__main__":
    main()
