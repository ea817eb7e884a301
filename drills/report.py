"""A drill's report: the JSON document its issue names, and its goals, which set the exit status."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from drills.database import DatabaseUnavailable
from drills.timebox import DrillTimeout, deadline


@dataclass(frozen=True)
class Goal:
    description: str
    held: bool


def write(path: Path, document: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def verdict(goals: Sequence[Goal], out: TextIO) -> int:
    """Print each goal; 0 when every one held, else 1."""
    for goal in goals:
        print(f"{'PASS' if goal.held else 'FAIL'} {goal.description}", file=out, flush=True)
    return 0 if all(goal.held for goal in goals) else 1


def run(
    name: str,
    path: Path,
    seconds: int,
    drill: Callable[[], tuple[Mapping[str, Any], Sequence[Goal]]],
    out: TextIO,
) -> int:
    """Run ``drill`` within ``seconds``, write its report to ``path`` and judge its goals: the
    exit status, 0 when every goal held, 1 when one did not, 2 when the drill could not run."""
    started = time.monotonic()
    try:
        with deadline(seconds):
            document, goals = drill()
    except (DatabaseUnavailable, DrillTimeout) as exc:
        print(f"drill {name}: {exc}", file=out)
        return 2
    write(path, document)
    print(f"drill {name}: report in {path} after {time.monotonic() - started:.0f} s", file=out)
    return verdict(goals, out)
