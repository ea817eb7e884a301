"""One app instance: ``python manage.py serve`` run from a build's directory on a fixed port.

It sees only the settings it is given (plus PATH and locale), never the caller's environment or
a ``local.settings.json``, as an App Service instance sees only its app settings. Restarting it
with another build or other settings keeps its port, so a load balancer's server stays valid.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx

from drills.process import LOOPBACK, LoggedProcess, free_port

START_TIMEOUT_SECONDS = 90.0
ORIGIN = "https://drill.example.com"
SUPERUSER = "drill-admin@example.com"
_STARTED = re.compile(r"Host started on (http://\S+)")
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


class InstanceError(Exception):
    """The instance would not start (its log says why)."""


def production_settings(database: str, redis_url: str) -> dict[str, str]:
    """An instance's app settings in a drill: production rules, fresh secrets, its own cache
    namespace, the drill's superuser and browser origin."""
    return {
        "ENVIRONMENT": "production",
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "CACHE_PREFIX": f"stratus-drill-{uuid.uuid4().hex[:8]}",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "JWT_SECRET_KEY": secrets.token_urlsafe(32),
        "CORS_ORIGINS": ORIGIN,
        "FIRST_SUPERUSER": SUPERUSER,
        "FIRST_SUPERUSER_PASSWORD": secrets.token_urlsafe(16),
        "REDIS_RECONNECT_SCHEDULE": "0 */1 * * * *",
    }


def process_environment(settings: Mapping[str, str]) -> dict[str, str]:
    passed = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    return {**passed, **settings, "PYTHONUNBUFFERED": "1"}


class ServeInstance:
    def __init__(self, name: str, python: str = sys.executable) -> None:
        """``python``: the interpreter (of the build's own environment, when it has one)."""
        self.name = name
        self.python = python
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.build: Path | None = None
        self._process: LoggedProcess | None = None

    def start(self, build: Path, settings: Mapping[str, str]) -> None:
        assert self._process is None, f"{self.name} is running"
        command = [self.python, "manage.py", "--settings", str(build / "absent.settings.json")]
        command += ["serve", "--host", LOOPBACK, "--port", str(self.port)]
        self.build = build
        self._process = LoggedProcess(
            command, env=process_environment(settings), cwd=build, name=f"serve-{self.name}"
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _STARTED.search(self._process.output()):
            if not self._process.running or time.monotonic() > deadline:
                output = self._process.output()[-3000:]
                self.stop()
                raise InstanceError(f"{self.name} did not start:\n{output}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None

    def kill(self) -> None:
        """SIGKILL, as when an instance's host is lost: nothing in flight finishes or closes."""
        if self._process is not None:
            self._process.process.kill()
            self._process.close()
            self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.process.pid if self._process is not None else None

    def output(self) -> str:
        """What the running instance has logged so far."""
        return self._process.output() if self._process is not None else ""

    def restart(self, build: Path, settings: Mapping[str, str]) -> None:
        self.stop()
        self.start(build, settings)

    def ready_within(self, seconds: float) -> bool:
        """Swap warm-up: whether /readyz answers 200 on this instance within ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def manage(build: Path, settings: Mapping[str, str], *command: str) -> None:
    """``python manage.py <command>`` in a build's directory with only ``settings``."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "--settings", "absent.json", *command],
        cwd=build,
        env=process_environment(settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(command)}: {result.stdout}{result.stderr}")
