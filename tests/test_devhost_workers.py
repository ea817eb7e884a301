"""FUNCTIONS_WORKER_PROCESS_COUNT: devhost serves with that many worker processes, each running
the real worker runtime; requests reach all of them, and each timer occurrence fires once."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.devhost_process import DevhostProcess

SAMPLE_APP = "tests/apps/devhost_sample.py"
MAX_REQUESTS = 300
TIMER_WAIT_SECONDS = 15.0


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    env = {
        "FUNCTIONS_WORKER_PROCESS_COUNT": "2",
        "TICK_SCHEDULE": "*/1 * * * * *",
        "AzureWebJobs.disabled_timer.Disabled": "true",
    }
    # No host.json in the working directory: the default route prefix "api" applies.
    workdir = tmp_path_factory.mktemp("devhost-workers")
    with DevhostProcess(env=env, script=SAMPLE_APP, cwd=workdir, port=0) as server:
        yield server


def test_requests_are_served_by_two_worker_processes_under_one_host(two_workers):
    seen: set[int] = set()
    for _ in range(MAX_REQUESTS):  # each on a new connection, which either worker may accept
        with httpx.Client(base_url=two_workers.url, timeout=10) as client:
            response = client.get("/api/worker-pid")
        assert response.status_code == 200
        seen.add(response.json()["pid"])
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"one worker answered all {MAX_REQUESTS} requests"
    assert two_workers.pid not in seen
    assert {_parent_of(pid) for pid in seen} == {two_workers.pid}
    output = two_workers.output()
    assert output.count("Host started on") == 1
    assert output.count("Functions:") == 1  # the function list is printed once


def test_each_timer_occurrence_fires_once_not_once_per_worker(two_workers):
    fired = re.compile(r"Executing 'Functions\.tick' \(Reason='Timer fired at ([^']+)'")
    deadline = time.monotonic() + TIMER_WAIT_SECONDS
    while len(fired.findall(two_workers.output())) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    occurrences = fired.findall(two_workers.output())
    assert len(occurrences) >= 3
    assert len(occurrences) == len(set(occurrences)), occurrences
    assert two_workers.output().count("Executed 'Functions.startup_timer'") == 1


def test_stopping_the_host_stops_every_worker():
    env = {"FUNCTIONS_WORKER_PROCESS_COUNT": "3", "TICK_SCHEDULE": "0 0 0 1 1 *"}
    with DevhostProcess(env=env, script=SAMPLE_APP, port=0) as server:
        listed = re.search(r"worker processes ([\d, ]+)", server.output())
        assert listed is not None
        workers = [int(pid) for pid in listed[1].split(", ")]
        assert len(workers) == 3
        assert server.stop() == 0
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("value", ["0", "11", "two", "-1"])
def test_an_unusable_process_count_is_a_clear_error(value):
    server = DevhostProcess(env={"FUNCTIONS_WORKER_PROCESS_COUNT": value}, script=SAMPLE_APP)
    with pytest.raises(RuntimeError, match="exited with code 1") as failure:
        server.start()
    server.stop()
    assert "FUNCTIONS_WORKER_PROCESS_COUNT must be a whole number from 1 to 10" in str(
        failure.value
    )
