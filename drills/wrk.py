"""wrk (Debian's ``wrk``) against a URL: GET requests over a list of paths, with a bearer token.

Its figures come from the ``done`` hook the benchmarks share (bench/wrk/report.lua): requests,
errors and latency percentiles, p95 included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT_HOOK = ROOT / "bench" / "wrk" / "report.lua"

_ROTATE = """
local token, paths, next_path = "", {}, 0
function init(args)
  token = args[1]
  for i = 2, #args do paths[#paths + 1] = args[i] end
end
function request()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path], {["Authorization"] = "Bearer " .. token})
end
"""


class WrkError(Exception):
    """wrk is missing or failed."""


@dataclass(frozen=True)
class WrkRun:
    requests_per_second: float
    requests: int
    errors: int  # connect, read, write and timeout errors, and answers other than 2xx/3xx
    p50_ms: float
    p95_ms: float
    p99_ms: float


def binary() -> str | None:
    return shutil.which("wrk")


def run(
    url: str, token: str, paths: Sequence[str], *, seconds: int, connections: int, threads: int = 1
) -> WrkRun:
    found = binary()
    if found is None:
        raise WrkError("wrk is not installed (Debian package wrk)")
    with tempfile.TemporaryDirectory(prefix="stratus-wrk-") as work:
        script = Path(work) / "reads.lua"
        script.write_text(_ROTATE + REPORT_HOOK.read_text())
        command = [found, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        command += ["-s", str(script), url, "--", token, *paths]
        result = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if result.returncode != 0 or line is None:
        raise WrkError(f"wrk failed: {result.stdout[-1000:]}{result.stderr[-1000:]}")
    figures = json.loads(line.removeprefix("BENCH "))
    errors = sum(figures[name] for name in ("connect", "read", "write", "status", "timeout"))
    return WrkRun(
        requests_per_second=round(figures["requests"] / (figures["duration_us"] / 1e6), 1),
        requests=figures["requests"],
        errors=errors,
        p50_ms=round(figures["p50"] / 1000, 1),
        p95_ms=round(figures["p95"] / 1000, 1),
        p99_ms=round(figures["p99"] / 1000, 1),
    )
