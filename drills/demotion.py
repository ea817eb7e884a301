"""A superuser who keeps calling some instances while another instance demotes and deactivates
them: how long until every one of those instances refuses them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from drills.lifecycle import InBackground

SUPERUSER_ONLY = "/api/v1/users/?skip=0&limit=1"


@dataclass(frozen=True, slots=True)
class Attempt:
    instance: str
    started: float  # time.time()
    status: int  # 0: no answer


class SuperuserCalls(InBackground):
    """``GET`` of a superuser-only route on each of ``instances`` in turn, until stopped."""

    def __init__(self, instances: dict[str, str], token: str, interval: float = 0.05) -> None:
        super().__init__()
        self.instances = instances  # name -> URL
        self.token = token
        self.interval = interval
        self.attempts: list[Attempt] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(headers=headers, timeout=5) as http:
            while not self.stopping.is_set():
                for name, url in self.instances.items():
                    started = time.time()
                    try:
                        status = http.get(url + SUPERUSER_ONLY).status_code
                    except httpx.HTTPError:
                        status = 0
                    self.attempts.append(Attempt(name, started, status))
                self.stopping.wait(self.interval)


def seen_seconds(
    attempts: Sequence[Attempt], instances: Sequence[str], demoted_at: float
) -> float | None:
    """Seconds from the demotion's acknowledgement until every instance refused the user for
    good: per instance, the start of the first refused call after its last accepted one (a call
    started before the acknowledgement counts as at it). None when an instance still accepted
    the user at its last call, or was never asked afterwards."""
    seen = 0.0
    for name in instances:
        calls = [a for a in attempts if a.instance == name]
        accepted = [i for i, a in enumerate(calls) if a.status == 200]
        first_refused = accepted[-1] + 1 if accepted else 0
        if first_refused >= len(calls) or calls[-1].started < demoted_at:
            return None
        seen = max(seen, calls[first_refused].started - demoted_at)
    return round(seen, 2)
