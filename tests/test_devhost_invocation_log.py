"""devhost's per-invocation log lines, in the Functions host's format, for HTTP requests that
succeed, answer 4xx and 500, fail in the host, and for a timer; their invocation id is the one
the app logs and sends to Application Insights; host.json's log levels quiet them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import app_env
from tests.support.ai_collector import IngestionEndpoint
from tests.support.devhost_process import DevhostProcess

APP = "tests/apps/invocation_log_app.py"
WAIT_SECONDS = 30.0
ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
HTTP_REASON = "This function was programmatically called via the host APIs."
QUIET = {"AzureFunctionsJobHost__logging__logLevel__Function": "Warning"}


def _env(tmp_path, **overrides: str) -> dict[str, str]:
    return app_env(
        f"sqlite:///{tmp_path / 'app.db'}",
        None,
        # Every span exported, none of the exporter's own usage telemetry (it would leave loopback).
        OTEL_TRACES_SAMPLER="always_on",
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",
        **overrides,
    )


@pytest.fixture(scope="module")
def collector() -> Iterator[IngestionEndpoint]:
    with IngestionEndpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def server(tmp_path_factory, collector) -> Iterator[DevhostProcess]:
    tmp_path = tmp_path_factory.mktemp("invocation-log")
    env = _env(tmp_path, APPLICATIONINSIGHTS_CONNECTION_STRING=collector.connection_string)
    with DevhostProcess(env=env, script=APP, cwd=tmp_path) as process:
        yield process


def _eventually[T](find: Callable[[], T | None], describe: Callable[[], str]) -> T:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"not there after {WAIT_SECONDS:.0f}s:\n{describe()}")


def _invocation(server: DevhostProcess, name: str, path: str) -> tuple[str, list[str]]:
    """GET ``path`` and wait for its lines; the invocation id and the lines that carry it or
    follow its end (the request line)."""
    status = httpx.get(f"{server.url}{path}", timeout=10).status_code
    request_line = f"Executed HTTP request: GET {path} {status}"

    def lines() -> tuple[str, list[str]] | None:
        output = server.output()
        if request_line not in output:
            return None
        start = re.search(rf"Executing 'Functions\.{name}' \(Reason='[^']*', Id=({ID})\)", output)
        assert start, output
        invocation_id = start.group(1)
        mine = [
            line
            for line in output.splitlines()
            if invocation_id in line or line.endswith(request_line)
        ]
        return invocation_id, mine

    return _eventually(lines, server.output)


def test_a_success_logs_its_start_its_end_and_the_request(server):
    invocation_id, lines = _invocation(server, "ok", "/api/ok")
    assert lines[0].endswith(
        f"Executing 'Functions.ok' (Reason='{HTTP_REASON}', Id={invocation_id})"
    )
    assert re.search(
        rf"Executed 'Functions\.ok' \(Succeeded, Id={invocation_id}, "
        r"Duration=\d+ms\)$",
        lines[-2],
    ), lines
    assert lines[-1].endswith("Executed HTTP request: GET /api/ok 200")
    # The app's own log line inside the invocation carries the same id.
    assert any(line.endswith(f"ok ran with invocation {invocation_id}") for line in lines), lines


def test_a_4xx_is_a_succeeded_invocation_with_its_status(server):
    invocation_id, lines = _invocation(server, "missing", "/api/missing")
    assert re.search(rf"Executed 'Functions\.missing' \(Succeeded, Id={invocation_id}, ", lines[-2])
    assert lines[-1].endswith("Executed HTTP request: GET /api/missing 404")


def test_an_app_500_carries_the_id_the_app_logs_and_sends_to_application_insights(
    server, collector
):
    invocation_id, lines = _invocation(server, "broken", "/api/broken")
    # The app answered (its 500), so the invocation succeeded in the host's sense.
    assert re.search(rf"Executed 'Functions\.broken' \(Succeeded, Id={invocation_id}, ", lines[-2])
    assert lines[-1].endswith("Executed HTTP request: GET /api/broken 500")
    assert f"Unhandled error in broken (invocation {invocation_id})" in server.output()

    def request_telemetry() -> list[dict[str, Any]]:
        return [
            envelope["data"]["baseData"]
            for envelope in collector.of_type("RequestData")
            if envelope["data"]["baseData"]["properties"].get("faas.invocation_id") == invocation_id
        ]

    recorded = _eventually(request_telemetry, lambda: str(collector.envelopes[-5:]))
    assert recorded[0]["name"] == "GET /broken"
    assert recorded[0]["responseCode"] == "500"


def test_a_failed_invocation_is_the_hosts_error_with_its_empty_500(server):
    invocation_id, lines = _invocation(server, "crash", "/api/crash")
    assert re.search(
        rf"Executed 'Functions\.crash' \(Failed, Id={invocation_id}, ", server.output()
    )
    assert "RuntimeError: an exception the host reports" in server.output()
    assert lines[-1].endswith("Executed HTTP request: GET /api/crash 500")


def test_a_timer_logs_its_start_and_end_with_one_id(server):
    def timer_ids() -> tuple[str, str] | None:
        output = server.output()
        start = re.search(
            rf"Executing 'Functions\.heartbeat' \(Reason='Timer fired at [^']+', Id=({ID})\)",
            output,
        )
        if start is None:
            return None
        end = re.search(
            rf"Executed 'Functions\.heartbeat' \(Succeeded, Id={start.group(1)}, "
            r"Duration=\d+ms\)",
            output,
        )
        return (start.group(1), end.group(0)) if end else None

    _eventually(timer_ids, server.output)


def test_host_json_log_levels_quiet_the_lines_and_failures_still_show(tmp_path):
    with DevhostProcess(env=_env(tmp_path, **QUIET), script=APP, cwd=tmp_path) as quiet:
        assert httpx.get(f"{quiet.url}/api/ok", timeout=10).status_code == 200
        assert httpx.get(f"{quiet.url}/api/crash", timeout=10).status_code == 500
        output = _eventually(
            lambda: (
                quiet.output() if "Executed 'Functions.crash' (Failed" in quiet.output() else None
            ),
            quiet.output,
        )
    assert "ok ran with invocation" in output  # the app's own warnings are not the host's
    assert "Executing 'Functions." not in output
    assert "Executed 'Functions.ok'" not in output
    assert "Executed HTTP request" not in output
