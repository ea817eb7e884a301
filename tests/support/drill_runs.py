"""A drill's short version run from outside, as an operator runs it: its report, once it passed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def short_drill(name: str, report: Path, timeout: float) -> dict[str, Any]:
    """``manage.py drill <name> --short``: its JSON report (the drill must exit 0)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "drill", name, "--short", "--report", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    document: dict[str, Any] = json.loads(report.read_text())
    return document
