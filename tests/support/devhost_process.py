"""Running a function app under devhost in a child process, for end-to-end tests.

``with DevhostProcess(env={...}) as server: httpx.get(f"{server.url}/healthz")``. The child's
output goes to a temporary log file (read it with ``output()``); startup failures raise with
that log, so a broken app shows its traceback in the test report instead of a timeout.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from drills.lifecycle import Started
from tests.support.services import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 30.0
_STARTED = re.compile(r"Host started on (http://\S+)")
_POLL_SECONDS = 0.05


class DevhostProcess(Started):
    """``python -m devhost`` in a child process, started on entry and stopped on exit.

    ``settings_file`` defaults to a path that does not exist, so a developer's own
    local.settings.json never leaks into a test; ``port`` defaults to a free one (0 lets
    devhost choose). ``script`` is the app's script, relative to the project root: its directory
    is the function app directory and its name ``PYTHON_SCRIPT_FILE_NAME``, as on Azure. The
    project root is put on the child's PYTHONPATH, so ``cwd`` may be any directory (one holding
    a test's host.json, say).
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        script: str = "function_app.py",
        cwd: Path = PROJECT_ROOT,
        port: int | None = None,
        settings_file: str | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self._env = dict(env or {})
        self._script = PROJECT_ROOT / script
        self._cwd = cwd
        self._port = port
        self._settings_file = settings_file
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._final_output: str | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        return self._running().pid

    def start(self) -> None:
        descriptor, log_path = tempfile.mkstemp(prefix="devhost-", suffix=".log")
        self._log_path = Path(log_path)
        settings = self._settings_file or str(self._log_path.with_suffix(".absent-settings.json"))
        env = {**os.environ, "PYTHON_SCRIPT_FILE_NAME": self._script.name}
        env.update(self._env)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if part
        )
        port = free_port() if self._port is None else self._port
        command = [sys.executable, "-m", "devhost", "--app-dir", str(self._script.parent)]
        command += ["--port", str(port), "--settings", settings]
        try:
            self._process = subprocess.Popen(
                command, cwd=self._cwd, env=env, stdout=descriptor, stderr=subprocess.STDOUT
            )
        finally:
            os.close(descriptor)  # the child holds its own copy
        self._wait_until_started()

    def _wait_until_started(self) -> None:
        process = self._running()
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            found = _STARTED.search(self.output())
            if found:
                self.url = found.group(1)
                return
            if process.poll() is not None:
                raise RuntimeError(
                    f"devhost exited with code {process.returncode} before starting:\n"
                    f"{self.output()}"
                )
            time.sleep(_POLL_SECONDS)
        raise RuntimeError(
            f"devhost did not start within {self._startup_timeout:.0f}s:\n{self.output()}"
        )

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("DevhostProcess has not been started")
        return self._process

    def output(self) -> str:
        """Everything the process has written so far (stdout and stderr, interleaved)."""
        if self._final_output is not None:
            return self._final_output
        if self._log_path is None:
            return ""
        return self._log_path.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float) -> int:
        """The exit code once the process ends by itself (after a signal the test sent)."""
        return self._running().wait(timeout)

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; the exit code."""
        process = self._running()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        return process.returncode

    def close(self) -> None:
        """Stop the process, keep its output in memory and delete the log file."""
        if self._process is not None:
            self.stop()
        if self._log_path is not None:
            self._final_output = self.output()
            self._log_path.unlink(missing_ok=True)
            self._log_path = None
