"""Cold start, side by side in one run: Stratus's ``function_app`` against a bare FunctionApp.

What is timed, in a fresh interpreter each time (the same ``.venv`` Python for both apps):
- the worker's start (importing ``azure_functions_runtime`` and the host's protobuf messages,
  the same for both apps), then the app's import and indexing through the runtime, as Azure's
  Python 3.13 worker does it: ``WorkerInitRequest`` (imports the script, indexes and checks every
  function) and ``FunctionsMetadataRequest``, measured inside the child with
  ``perf_counter_ns``; the goal is Stratus's import + index within 1.5x the bare app's;
- the whole process (interpreter start, import, index, exit), measured by the parent;
- as context, spawn of ``python -m devhost`` to the first ``200`` from ``GET /healthz`` and the
  latency of that first request, for both apps.

The variants alternate process by process (ABBA order), so drift on the machine hits both alike;
figures are the median and p90 of N processes. Children get a minimal environment (PATH, HOME,
LANG): ``ENVIRONMENT`` unset means development, so Stratus also registers its development-only
route; no ``DATABASE_URL`` or ``REDIS_URL`` (neither is touched at import). Bytecode caches are
warm, as on any second start. A ``-X importtime`` run of each app then shows where the extra
import time goes. Run from the repository root:

    .venv/bin/python -m bench.cold_start [--runs 30] [--devhost-runs 10] [--no-hyperfine]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.host_logs import QUIET_INVOCATION_LOGS
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
CHILD = (
    "import time; t0 = time.perf_counter_ns(); import asyncio, os, sys; "
    "from devhost.runtime import FunctionsRuntime; runtime = FunctionsRuntime(); "
    "os.environ['PYTHON_SCRIPT_FILE_NAME'] = '{script}'; sys.path.insert(0, '{directory}'); "
    "t1 = time.perf_counter_ns(); n = len(asyncio.run(runtime.start('{directory}'))); "
    "t2 = time.perf_counter_ns(); print(t1 - t0, t2 - t1, n, len(sys.modules))"
)
STARTUP_TIMEOUT_SECONDS = 30.0
TIMER_SCHEDULE = "0 */1 * * * *"  # the sample settings' value; unset, Stratus's timer is in error
DESIGN_BARE_IMPORT_MS = 111
DESIGN_TEMPLATE_IMPORT_MS = 720


@dataclass(frozen=True)
class App:
    label: str
    directory: Path  # the function app directory
    script: str  # its PYTHON_SCRIPT_FILE_NAME


BARE = App("bare one-route FunctionApp", BENCH, "bare_app.py")
STRATUS = App("Stratus function_app", ROOT, "function_app.py")
APPS = (BARE, STRATUS)


@dataclass
class Samples:
    worker_ms: list[float] = field(default_factory=list)
    index_ms: list[float] = field(default_factory=list)
    process_ms: list[float] = field(default_factory=list)
    functions: int = 0
    modules: int = 0
    first_200_ms: list[float] = field(default_factory=list)
    first_request_ms: list[float] = field(default_factory=list)
    second_request_ms: list[float] = field(default_factory=list)


def child_env() -> dict[str, str]:
    env = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    env["LANG"] = "C.UTF-8"
    env.update(QUIET_INVOCATION_LOGS)
    return env


def import_command(app: App) -> list[str]:
    return [PYTHON, "-c", CHILD.format(script=app.script, directory=app.directory)]


def run_import(app: App, samples: Samples) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        import_command(app),
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    samples.process_ms.append((time.perf_counter() - started) * 1e3)
    worker_ns, index_ns, functions, modules = (int(v) for v in result.stdout.split())
    samples.worker_ms.append(worker_ns / 1e6)
    samples.index_ms.append(index_ns / 1e6)
    samples.functions, samples.modules = functions, modules


def devhost_command(app: App, port: int, settings: Path) -> list[str]:
    command = [PYTHON, "-m", "devhost", "--app-dir", str(app.directory), "--port", str(port)]
    return [*command, "--settings", str(settings)]


def get_healthz(port: int) -> tuple[int, float]:
    """Status and latency in ms of one ``GET /healthz``; raises OSError while nothing listens."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.connect()
        started = time.perf_counter()
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1e3
    finally:
        connection.close()


def run_devhost(app: App, samples: Samples, settings: Path) -> None:
    port = free_port()
    env = {**child_env(), "PYTHONPATH": str(ROOT), "REDIS_RECONNECT_SCHEDULE": TIMER_SCHEDULE}
    env["PYTHON_SCRIPT_FILE_NAME"] = app.script
    started = time.perf_counter()
    process = subprocess.Popen(
        devhost_command(app, port, settings),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = started + STARTUP_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"devhost for {app.label} did not answer /healthz")
            try:
                status, latency = get_healthz(port)
            except OSError:
                time.sleep(0.002)
                continue
            if status == 200:
                samples.first_200_ms.append((time.perf_counter() - started) * 1e3)
                samples.first_request_ms.append(latency)
                break
        status, latency = get_healthz(port)
        assert status == 200
        samples.second_request_ms.append(latency)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def importtime_by_package(app: App) -> dict[str, float]:
    """Self import time (ms) per top-level package, from one ``-X importtime`` run."""
    command = [PYTHON, "-X", "importtime", *import_command(app)[1:]]
    result = subprocess.run(
        command, cwd=ROOT, env=child_env(), capture_output=True, text=True, check=True
    )
    totals: dict[str, float] = defaultdict(float)
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|", 2)
        totals[name.strip().split(".")[0]] += int(self_us) / 1e3
    return dict(totals)


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def hyperfine(runs: int) -> tuple[list[str], dict[str, float]] | None:
    """Whole-process mean and median per app from hyperfine (a cross-check, not interleaved)."""
    binary = shutil.which("hyperfine")
    if binary is None:
        return None
    with tempfile.TemporaryDirectory() as directory:
        export = Path(directory) / "hyperfine.json"
        command = [binary, "-N", "--warmup", "3", "--runs", str(runs)]
        command += ["--export-json", str(export)]
        for app in APPS:
            # hyperfine -N splits this string shell-like; the code holds no double quote.
            code = CHILD.format(script=app.script, directory=app.directory)
            command += ["-n", app.label, f'{PYTHON} -c "{code}"']
        subprocess.run(command, cwd=ROOT, env=child_env(), check=True, capture_output=True)
        results = json.loads(export.read_text())["results"]
    shown = [*command[: command.index("--export-json")], *command[command.index("-n") :]]
    return shown, {r["command"]: r["median"] * 1e3 for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="fresh processes per app")
    parser.add_argument("--devhost-runs", type=int, default=10, help="devhost starts per app")
    parser.add_argument("--no-hyperfine", action="store_true", help="skip the cross-check")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    samples = {app.label: Samples() for app in APPS}
    with tempfile.TemporaryDirectory() as directory:
        absent = Path(directory) / "absent.local.settings.json"  # no developer settings leak in
        for app in APPS:  # warm the page cache and bytecode; not counted
            run_import(app, Samples())
            run_devhost(app, Samples(), absent)
    for n in range(args.runs):
        for app in APPS if n % 2 == 0 else APPS[::-1]:
            run_import(app, samples[app.label])
    with tempfile.TemporaryDirectory() as directory:
        absent = Path(directory) / "absent.local.settings.json"  # no developer settings leak in
        for n in range(args.devhost_runs):
            for app in APPS if n % 2 == 0 else APPS[::-1]:
                run_devhost(app, samples[app.label], absent)
    profiles = {app.label: importtime_by_package(app) for app in APPS}
    cross_check = None if args.no_hyperfine else hyperfine(args.runs)

    print(
        f"Python {platform.python_version()} ({PYTHON}); {os.cpu_count()} CPUs; load average "
        f"(1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    print("Commands (interleaved, ABBA; in the repository root; environment PATH, HOME, LANG):")
    for app in APPS:
        print(f"  {shlex.join(import_command(app))}")
    for app in APPS:
        shown = shlex.join(devhost_command(app, 0, Path("<absent settings file>")))
        shown = shown.replace(" --port 0 ", " --port <port> ")
        print(
            f"  PYTHONPATH=. PYTHON_SCRIPT_FILE_NAME={app.script} "
            f"REDIS_RECONNECT_SCHEDULE='{TIMER_SCHEDULE}' {shown}"
        )
    print(f"  then GET /healthz every 2 ms until 200; {args.runs} and {args.devhost_runs} runs")
    print()
    bare, stratus = samples[BARE.label], samples[STRATUS.label]
    rows = [
        ("worker start: import the runtime and the protos", "worker_ms"),
        ("app import + index through the runtime", "index_ms"),
        ("whole process (python -c ...)", "process_ms"),
        ("devhost spawn -> first 200 /healthz", "first_200_ms"),
        ("first /healthz request latency", "first_request_ms"),
        ("second /healthz request latency", "second_request_ms"),
    ]
    header = f"| measure | {BARE.label} median / p90 | {STRATUS.label} median / p90 |"
    print(header + " ratio of medians |")
    print("|---|---:|---:|---:|")
    for title, name in rows:
        values = []
        for figures in (bare, stratus):
            values.append(getattr(figures, name))
        medians = [statistics.median(v) for v in values]
        digits = 2 if max(medians) < 1 else 1
        cells = " | ".join(
            f"{statistics.median(v):.{digits}f} / {p90(v):.{digits}f} ms" for v in values
        )
        print(f"| {title} | {cells} | {medians[1] / medians[0]:.2f}x |")
    print(f"| functions indexed | {bare.functions} | {stratus.functions} | |")
    print(f"| modules in sys.modules after import | {bare.modules} | {stratus.modules} | |")
    print()
    ratio = statistics.median(stratus.index_ms) / statistics.median(bare.index_ms)
    print(
        f"import + index through the runtime, ratio {ratio:.2f}x: goal <= 1.5x "
        f"{'met' if ratio <= 1.5 else 'MISSED'}. DESIGN.md's reference figures (not measured "
        f"here): bare FunctionApp import ~{DESIGN_BARE_IMPORT_MS} ms, the template "
        f"~{DESIGN_TEMPLATE_IMPORT_MS} ms."
    )
    print()
    print("Self import time by top-level package, one `python -X importtime -c ...` run each (ms):")
    print("| package | bare | Stratus | extra |")
    print("|---|---:|---:|---:|")
    bare_profile, stratus_profile = profiles[BARE.label], profiles[STRATUS.label]
    extra = {
        name: ms - bare_profile.get(name, 0.0)
        for name, ms in stratus_profile.items()
        if name != "bare_app"
    }
    for name, delta in sorted(extra.items(), key=lambda kv: -kv[1])[:12]:
        print(
            f"| {name} | {bare_profile.get(name, 0.0):.1f} | {stratus_profile[name]:.1f} |", end=""
        )
        print(f" {delta:+.1f} |")
    print(
        f"| (all) | {sum(bare_profile.values()):.1f} | {sum(stratus_profile.values()):.1f} | "
        f"{sum(stratus_profile.values()) - sum(bare_profile.values()):+.1f} |"
    )
    if cross_check is not None:
        command, whole = cross_check
        print()
        print(
            "Cross-check, whole process, hyperfine (each app's runs in one batch, not interleaved):"
        )
        print(f"  {shlex.join(command)}")
        for label, ms in whole.items():
            print(f"  {label}: median {ms:.1f} ms")
        print(f"  ratio {whole[STRATUS.label] / whole[BARE.label]:.2f}x")


if __name__ == "__main__":
    main()
