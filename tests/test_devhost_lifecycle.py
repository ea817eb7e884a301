"""devhost startup failures and graceful shutdown, each in its own process."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.devhost_process import DevhostProcess

SAMPLE_APP = "tests.apps.devhost_sample"
QUIET_TIMERS = {"TICK_SCHEDULE": "0 0 0 1 1 *"}


@pytest.fixture
def no_prefix_dir(tmp_path: Path) -> Path:
    """A working directory whose host.json sets the route prefix to "", as the project's does."""
    (tmp_path / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": ""}}})
    )
    return tmp_path


def test_sigterm_lets_an_in_flight_request_finish_then_exits_0(no_prefix_dir):
    with (
        DevhostProcess(env=QUIET_TIMERS, app_module=SAMPLE_APP, cwd=no_prefix_dir) as server,
        ThreadPoolExecutor(1) as pool,
    ):
        pending = pool.submit(httpx.get, f"{server.url}/slow/1500", timeout=10)
        deadline = time.monotonic() + 10
        while "slow request started" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "slow request started" in server.output()
        code = server.stop(timeout=10)
        response = pending.result(timeout=10)
    assert response.status_code == 200
    assert response.text == "finished"
    assert code == 0


def test_sigint_stops_the_host_with_exit_code_0(no_prefix_dir):
    with DevhostProcess(env=QUIET_TIMERS, app_module=SAMPLE_APP, cwd=no_prefix_dir) as server:
        assert httpx.get(f"{server.url}/users/me", timeout=10).status_code == 200
        os.kill(server.pid, signal.SIGINT)
        assert server.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("app_module", "message"),
    [
        ("tests.apps.devhost_two_apps", "More than one FunctionApp or other top level"),
        ("tests.apps.devhost_no_app", "Could not find top level function app instances"),
        ("tests.apps.devhost_bad_signature", "declared in Python but not in the function def"),
        ("tests.apps.devhost_missing_module", "cannot import tests.apps.devhost_missing_module"),
    ],
)
def test_an_app_the_worker_would_reject_stops_devhost_with_the_reason(app_module, message):
    with (
        pytest.raises(RuntimeError, match="exited with code 1 before starting") as failure,
        DevhostProcess(app_module=app_module),
    ):
        pass
    assert message in str(failure.value)


def test_a_malformed_local_settings_file_stops_devhost(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text('{"Values": {"A": "1",}}')
    with (
        pytest.raises(RuntimeError, match="exited with code 1") as failure,
        DevhostProcess(app_module=SAMPLE_APP, settings_file=str(settings)),
    ):
        pass
    assert f"{settings} is not valid JSON" in str(failure.value)
