"""A drill's report: the JSON document its issue names, and its goals, which set the exit status."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


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
