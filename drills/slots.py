"""The release's local adapter: a production and a staging slot behind HAProxy.

Two ``manage.py serve`` instances, ``a`` and ``b``, each holding a build (a package directory).
HAProxy has a ``production`` and a ``staging`` frontend; each routes to the instance that holds
that slot, the other instance being in maintenance there. Settings work as on App Service: each
slot has sticky settings that stay with it, and the rest travel with the build in a swap. A
swap follows Azure's order: production's sticky settings are applied to the staging instance
(a restart), its /readyz must answer 200 (else the swap is aborted and staging gets its own
settings back), then traffic moves through HAProxy's runtime API without dropping a request,
and the former production instance restarts with staging's sticky settings once idle.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from drills.haproxy import Backend, HAProxy, HAProxyError, Server
from drills.instance import InstanceError, ServeInstance, process_environment
from drills.lifecycle import Started
from scripts.release import PlatformError, Slot

SLOTS: tuple[Slot, Slot] = ("production", "staging")
WARM_UP_SECONDS = 60.0
DRAIN_SECONDS = 30.0
MIGRATE_TIMEOUT_SECONDS = 300


class LocalSlots(Started):
    def __init__(
        self,
        build: Path,
        *,
        settings: Mapping[str, str],
        sticky: Mapping[Slot, Mapping[str, str]],
        warm_up_seconds: float = WARM_UP_SECONDS,
    ) -> None:
        """Both slots start with ``build`` and the same travelling ``settings``."""
        self.instances = {name: ServeInstance(name) for name in ("a", "b")}
        self.holder: dict[Slot, str] = {"production": "a", "staging": "b"}
        self.builds = dict.fromkeys(self.instances, build)
        self.travelling = {name: dict(settings) for name in self.instances}
        self.sticky = {slot: dict(sticky[slot]) for slot in SLOTS}
        # Like slotConfigNames: a name declared sticky in either slot is sticky in both.
        self.sticky_names = set(self.sticky["production"]) | set(self.sticky["staging"])
        self.warm_up_seconds = warm_up_seconds
        a, b = self.instances["a"].port, self.instances["b"].port
        self.haproxy = HAProxy(
            [
                Backend("production", (Server("a", a), Server("b", b, enabled=False))),
                Backend("staging", (Server("a", a, enabled=False), Server("b", b))),
            ]
        )

    def start(self) -> None:
        for slot in SLOTS:
            self._restart(slot)
        self.haproxy.start()

    def close(self) -> None:
        self.haproxy.close()
        for instance in self.instances.values():
            instance.stop()

    # --- scripts.release.Platform ---------------------------------------------------------

    def app_settings(self, slot: Slot) -> dict[str, str]:
        return {**self.travelling[self.holder[slot]], **self.sticky[slot]}

    def set_app_settings(self, slot: Slot, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            if name in self.sticky_names:
                self.sticky[slot][name] = value
            else:
                self.travelling[self.holder[slot]][name] = value
        self._restart(slot)

    def deploy_package(self, slot: Slot, package: Path) -> None:
        self.builds[self.holder[slot]] = package
        self._restart(slot)

    def url(self, slot: Slot) -> str:
        return self.haproxy.url(slot)

    def migrate(self) -> None:
        """The staging build's ``manage.py migrate``, with staging's settings."""
        build = self.builds[self.holder["staging"]]
        result = subprocess.run(
            [sys.executable, "manage.py", "--settings", "absent.json", "migrate"],
            cwd=build,
            env=process_environment(self.app_settings("staging")),
            capture_output=True,
            text=True,
            timeout=MIGRATE_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise PlatformError(f"migrate failed: {(result.stdout + result.stderr)[-1000:]}")

    def swap(self) -> None:
        incoming, outgoing = self.holder["staging"], self.holder["production"]
        self._run(incoming, "production")
        if not self.instances[incoming].ready_within(self.warm_up_seconds):
            self._run(incoming, "staging")
            raise PlatformError(
                f"swap aborted: /readyz did not answer 200 within {self.warm_up_seconds:g} s"
            )
        try:
            self._route("production", to=incoming, away_from=outgoing)
            self._route("staging", to=outgoing, away_from=incoming)
        except HAProxyError as exc:
            raise PlatformError(f"swap: {exc}") from None
        self.holder = {"production": incoming, "staging": outgoing}
        self.haproxy.wait_until_idle("production", outgoing, DRAIN_SECONDS)
        self._run(outgoing, "staging")

    # --- internals ------------------------------------------------------------------------

    def _route(self, backend: str, *, to: str, away_from: str) -> None:
        """Put ``to`` in rotation (and see it UP) before taking ``away_from`` out."""
        self.haproxy.set_state(backend, to, "ready")
        self.haproxy.wait_for(backend, to, {"UP"}, timeout=10)
        self.haproxy.set_state(backend, away_from, "maint")

    def _restart(self, slot: Slot) -> None:
        self._run(self.holder[slot], slot)

    def _run(self, name: str, slot: Slot) -> None:
        """Restart instance ``name`` with its build, its travelling settings and ``slot``'s
        sticky ones."""
        settings = {**self.travelling[name], **self.sticky[slot]}
        try:
            self.instances[name].restart(self.builds[name], settings)
        except InstanceError as exc:
            raise PlatformError(str(exc)) from None
