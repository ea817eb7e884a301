"""``serve()``: start the worker runtime on the function app, then serve it under uvicorn until
SIGINT or SIGTERM.

When ``functionTimeout`` makes the host restart its worker (``devhost.timeouts``), devhost, whose
worker is its own process, restarts itself: it answers what is still running 500, stops serving,
and executes itself again with the same command line, handing the listening socket to the new
process (``DEVHOST_LISTEN_FD``) so that connections made meanwhile wait in its backlog, as
requests wait at the host while a worker restarts, instead of being refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import uvicorn

from devhost import executions
from devhost.asgi import FunctionsApp
from devhost.banner import render_functions, runtime_line
from devhost.errors import DevhostError
from devhost.functions import HttpTrigger, IndexedFunction, read_function
from devhost.hostjson import read_host_json
from devhost.routing import Router, RouteTemplate, full_template
from devhost.runtime import FunctionsRuntime
from devhost.settings import apply_local_settings
from devhost.timeouts import FunctionTimeouts
from devhost.timers import TimerScheduler
from devhost.workers import LISTEN_FD_VARIABLE, WorkerRole, process_count, serve_with_processes

logger = logging.getLogger("devhost")

# How long in-flight requests, then running timer functions, may take to finish at shutdown.
GRACE_SECONDS = 5


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[int], None]) -> None:
        super().__init__(config)
        self._on_started = on_started
        self.restart_with: int | None = None  # the listening socket's inheritable duplicate

    def restart_worker(self) -> None:
        """Stop serving, keeping a duplicate of the listening socket for the next process."""
        if self.restart_with is None and self.servers:
            listening = os.dup(self.servers[0].sockets[0].fileno())
            os.set_inheritable(listening, True)
            self.restart_with = listening
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # listening now; with port 0 only the socket knows the real port
            self._on_started(int(self.servers[0].sockets[0].getsockname()[1]))

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the captured signal once it has shut down, which turns a graceful
        # stop into death by SIGTERM or a KeyboardInterrupt; a clean stop should exit 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# The app setting the runtime honours for its own debug logs.
DEBUG_LOGGING_SETTING = "PYTHON_ENABLE_DEBUG_LOGGING"
# The script the worker indexes in the function app directory, as on Azure.
SCRIPT_FILE_SETTING = "PYTHON_SCRIPT_FILE_NAME"
DEFAULT_SCRIPT_FILE = "function_app.py"


def _configure_logging() -> None:
    # A no-op when the caller (manage.py) has configured logging already.
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="[%(asctime)s] %(message)s")
    logger.setLevel(logging.INFO)


def _configure_runtime_logging() -> None:
    # The runtime logs an INFO line per invocation under "azure.functions"; on Azure those go
    # to the host's system log, not the console. Its warnings stay visible; the app setting
    # shows the rest.
    debug = os.environ.get(DEBUG_LOGGING_SETTING, "").strip().lower() in {"1", "true"}
    logging.getLogger("azure.functions").setLevel(logging.DEBUG if debug else logging.WARNING)


async def _start_worker(runtime: FunctionsRuntime, app_dir: Path) -> list[IndexedFunction]:
    """Index the app through the runtime, then load every enabled function, as the host does."""
    script = os.environ.get(SCRIPT_FILE_SETTING) or DEFAULT_SCRIPT_FILE
    if not (app_dir / script).is_file():
        raise DevhostError(
            f"{app_dir / script} not found: the worker indexes {SCRIPT_FILE_SETTING} "
            f"(default {DEFAULT_SCRIPT_FILE}) in the function app directory"
        )
    indexed = await runtime.start(str(app_dir))
    functions = [read_function(metadata) for metadata in indexed]
    for metadata, function in zip(indexed, functions, strict=True):
        if not function.disabled:
            await runtime.load(metadata)
    return functions


def _router(functions: Sequence[IndexedFunction], route_prefix: str) -> Router[IndexedFunction]:
    routes: list[tuple[RouteTemplate, tuple[str, ...] | None, IndexedFunction]] = []
    for function in functions:
        trigger = function.trigger
        if not isinstance(trigger, HttpTrigger) or function.disabled:
            continue
        template = full_template(route_prefix, trigger.route)
        try:
            routes.append((RouteTemplate(template), trigger.methods, function))
        except ValueError as exc:
            raise DevhostError(
                f"Function '{function.name}': invalid route template '{template}': {exc}"
            ) from None
        if trigger.auth_level != "ANONYMOUS":
            logger.info(
                "'%s' has authLevel %s; like func start, devhost does not check keys",
                function.name,
                trigger.auth_level,
            )
    return Router(routes)


def _display_host(host: str) -> str:
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - naming the wildcard, not binding to it
        return "localhost"
    return f"[{host}]" if ":" in host else host


def serve(
    app_dir: str | Path = ".",
    host: str = "127.0.0.1",
    port: int = 7071,
    settings_file: str | Path = "local.settings.json",
    host_json: str | Path = "host.json",
) -> int:
    """Run the app's functions until SIGINT/SIGTERM; the process exit code.

    ``app_dir`` is the function app directory (the host's script root): it is put on
    ``sys.path`` as the worker does, and the runtime imports ``PYTHON_SCRIPT_FILE_NAME``
    (default ``function_app.py``) from it. Other paths are relative to the current directory.
    """
    _configure_logging()
    # A restart's or the host's socket, and this worker's role: not for the app's eyes.
    inherited = os.environ.pop(LISTEN_FD_VARIABLE, None)
    worker = WorkerRole.from_environment()
    app_path = Path(app_dir).resolve()
    runtime = FunctionsRuntime(host)
    try:
        # Settings go into the environment first: the app reads them at import.
        apply_local_settings(Path(settings_file))
        count = process_count()
        if worker is None and count > 1:
            return serve_with_processes(count, host, port, _display_host(host), GRACE_SECONDS)
        _configure_runtime_logging()
        host_config = read_host_json(Path(host_json))
        route_prefix = host_config.route_prefix
        if str(app_path) not in sys.path:
            sys.path.insert(0, str(app_path))
        functions = asyncio.run(_start_worker(runtime, app_path))
        router = _router(functions, route_prefix)
        executions.configure(host_config.log_levels, (function.name for function in functions))
    except DevhostError as exc:
        logger.error("%s", exc, exc_info=exc.__cause__)
        runtime.stop()
        return 1

    timeouts = FunctionTimeouts(host_config.function_timeout)
    # With several worker processes the host schedules each timer once: in worker 0.
    timers = functions if worker is None or worker.runs_timers else []
    scheduler = TimerScheduler(timers, runtime, timeouts)
    app = FunctionsApp(router, runtime, scheduler, timeouts, GRACE_SECONDS)

    def announce(bound_port: int) -> None:
        base_url = f"http://{_display_host(host)}:{bound_port}"
        if worker is None or worker.index == 0:
            print(render_functions(functions, base_url, route_prefix), flush=True)
            print(runtime_line(runtime), flush=True)
            logger.info("Thread pool: %s worker thread(s)", runtime.thread_count)
        if inherited is not None:
            logger.info("Worker process started and initialized.")
        if worker is None:
            print(f"Host started on {base_url}", flush=True)
        else:  # the host announces itself once every worker has
            worker.announce_ready()

    server = _server(app, host, port, announce)
    timeouts.on_restart = server.restart_worker
    sockets = [socket.socket(fileno=int(inherited))] if inherited is not None else None
    try:
        server.run(sockets=sockets)
    except SystemExit as exc:  # uvicorn exits this way when it cannot bind the port
        return exc.code if isinstance(exc.code, int) else 1
    if server.restart_with is not None:
        _execute_again(server.restart_with, worker)
    return 0


def _execute_again(listening: int, worker: WorkerRole | None) -> None:
    """Replace this process with a fresh devhost on the same command line and socket."""
    os.environ[LISTEN_FD_VARIABLE] = str(listening)
    if worker is not None:
        worker.keep_for_restart()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606


def _server(app: FunctionsApp, host: str, port: int, on_started: Callable[[int], None]) -> _Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="none",
        interface="asgi3",
        lifespan="on",
        access_log=False,
        log_config=None,
        proxy_headers=False,  # a local host has no proxy to trust, and the app stays raw ASGI
        server_header=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    return _Server(config, on_started)
