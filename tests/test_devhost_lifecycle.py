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

SAMPLE_APP = "tests/apps/devhost_sample.py"
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
        DevhostProcess(env=QUIET_TIMERS, script=SAMPLE_APP, cwd=no_prefix_dir) as server,
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
    with DevhostProcess(env=QUIET_TIMERS, script=SAMPLE_APP, cwd=no_prefix_dir) as server:
        assert httpx.get(f"{server.url}/users/me", timeout=10).status_code == 200
        os.kill(server.pid, signal.SIGINT)
        assert server.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "tests/apps/devhost_two_apps.py",
            "Worker failed to index functions: ValueError: More than one FunctionApp or other "
            "top level function app instances are defined.",
        ),
        (
            "tests/apps/devhost_no_app.py",
            "Worker failed to index functions: ValueError: Could not find top level function "
            "app instances in devhost_no_app.py.",
        ),
        (
            "tests/apps/devhost_import_error.py",
            "Worker failed to index functions: ModuleNotFoundError: No module named "
            "'module_that_is_not_installed'. Cannot find module.",
        ),
        ("tests/apps/devhost_missing_script.py", "devhost_missing_script.py not found"),
    ],
)
def test_an_app_the_runtime_cannot_index_stops_devhost_with_its_reason(script, message):
    with (
        pytest.raises(RuntimeError, match="exited with code 1 before starting") as failure,
        DevhostProcess(script=script),
    ):
        pass
    assert message in str(failure.value)


def test_a_function_whose_parameters_do_not_match_its_bindings_is_refused_by_name():
    """The runtime's own check (DESIGN.md: functools.wraps exposing an extra parameter)."""
    with (
        pytest.raises(RuntimeError, match="exited with code 1 before starting") as failure,
        DevhostProcess(script="tests/apps/devhost_bad_signature.py"),
    ):
        pass
    assert (
        "Worker failed to index functions: FunctionLoadError: cannot load the bad function: the "
        "following parameters are declared in Python but not in the function definition"
    ) in str(failure.value)
    assert "{'extra'}" in str(failure.value)


def test_a_malformed_local_settings_file_stops_devhost(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text('{"Values": {"A": "1",}}')
    with (
        pytest.raises(RuntimeError, match="exited with code 1") as failure,
        DevhostProcess(script=SAMPLE_APP, settings_file=str(settings)),
    ):
        pass
    assert f"{settings} is not valid JSON" in str(failure.value)


def _timeout_dir(path: Path, timeout: str) -> Path:
    (path / "host.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "functionTimeout": timeout,
                "extensions": {"http": {"routePrefix": ""}},
            }
        )
    )
    return path


def _wait_for(server: DevhostProcess, text: str, count: int = 1, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while server.output().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} did not appear:\n{server.output()}"
        time.sleep(0.05)


def test_over_function_timeout_the_host_answers_500_then_restarts_the_worker(tmp_path):
    """As the Functions host does for a language worker: the invocation fails at the timeout,
    and when it has not finished within the grace period the worker process restarts, failing
    what else runs in it; the same port serves again afterwards."""
    with (
        DevhostProcess(
            env=QUIET_TIMERS, script=SAMPLE_APP, cwd=_timeout_dir(tmp_path, "00:00:02")
        ) as server,
        ThreadPoolExecutor(1) as pool,
    ):
        pid = server.pid
        started = time.monotonic()
        timed_out = httpx.get(f"{server.url}/slow/30000", timeout=30)
        answered = time.monotonic() - started
        assert timed_out.status_code == 500
        assert timed_out.content == b""
        assert 2 <= answered < 10, answered
        # Another invocation, still within its own timeout when the worker restarts (2 s of
        # grace after the first one's timeout), fails with the worker.
        time.sleep(0.5)
        other = pool.submit(httpx.get, f"{server.url}/slow/30000", timeout=30)
        _wait_for(server, "Restarting worker process executing invocationId")
        assert other.result(timeout=20).status_code == 500
        _wait_for(server, "Host started on", count=2)
        assert httpx.get(f"{server.url}/users/me", timeout=10).status_code == 200
        assert server.pid == pid  # the same process, executed again, on the same socket
        output = server.output()
    assert "Timeout value of 00:00:02 exceeded by function 'Functions.slow' (Id: '" in output
    assert "Initiating cancellation." in output
    assert "Timeout value of 00:00:02 was exceeded by function: Functions.slow." in output
    assert "The worker process running the invocation was restarted." in output
    assert "Worker process started and initialized." in output


def test_a_function_that_ends_within_the_grace_period_does_not_restart_the_worker(tmp_path):
    with DevhostProcess(
        env=QUIET_TIMERS, script=SAMPLE_APP, cwd=_timeout_dir(tmp_path, "00:00:01")
    ) as server:
        assert httpx.get(f"{server.url}/slow/1800", timeout=30).status_code == 500
        time.sleep(3)  # past the end of the grace period
        assert httpx.get(f"{server.url}/users/me", timeout=10).status_code == 200
        output = server.output()
    assert "exceeded by function 'Functions.slow'" in output
    assert "Restarting worker process" not in output
    assert output.count("Host started on") == 1
