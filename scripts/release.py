"""The release and its rollbacks: every decision, whatever the platform.

    python manage.py release package --version SHA [--output dist/app.zip]
    python manage.py release deploy --version SHA --package dist/app.zip [--wait-seconds 30]
    python manage.py release recover --version SHA
    python manage.py release rollback --expected-version SHA

A release: record the version production holds (the ``APP_VERSION`` app setting, which the
release writes once a slot is seen serving its package; abort before any change if it cannot be
read) -> deploy the package to staging and wait until its /healthz reports the version stamped
inside it -> record that version on staging -> migrate (expand only) -> smoke-test staging ->
swap (the platform warms staging up on /readyz first) -> wait -> verify production (version and
smoke test) -> on failure swap back and verify production serves the previous version.

``recover`` is the workflow's rollback job (after a failed or cancelled release): it reads which
build each slot holds and swaps back only when production holds the release's version.
``rollback`` is the manual rollback: it refuses unless staging's /healthz reports the expected
version, so it can never swap a failed build (which staging holds after a failed release) into
production.

The platform is an adapter: ``scripts/azure_platform.py`` over the ``az`` CLI in the workflows,
``drills/slots.py`` (HAProxy in front of two ``manage.py serve`` slots) in the release drill.

Exit codes: 0 done, 1 failed before the swap (production untouched), 2 bad usage, 3 failed after
the swap and rolled back (production serves the previous version), 4 the rollback failed
(operator action: docs/runbook.md), 5 refused before any change.
"""

from __future__ import annotations

import argparse
import enum
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol, TextIO

from scripts import check_health, smoke_test
from scripts.package import PackageError, package_version

Slot = Literal["production", "staging"]
# The app setting that records which build a slot holds. Not sticky: it moves with the code in a
# swap, so after any swap each slot's record still names its own build.
RECORD = "APP_VERSION"
# What the infrastructure records on a slot no release has reached yet (infra/modules).
NO_RELEASE = "unreleased"
DEFAULT_WAIT_SECONDS = 30.0


class PlatformError(Exception):
    """The platform refused or failed an operation (its message says which and why)."""


class Platform(Protocol):
    def app_settings(self, slot: Slot) -> Mapping[str, str]:
        """The slot's app settings, as the control plane holds them."""

    def set_app_settings(self, slot: Slot, values: Mapping[str, str]) -> None:
        """Change settings (the slot restarts, as App Service restarts it)."""

    def deploy_package(self, slot: Slot, package: Path) -> None: ...

    def url(self, slot: Slot) -> str: ...

    def migrate(self) -> None:
        """Upgrade the shared database to the head of the build in staging."""

    def swap(self) -> None:
        """Staging into production: production's sticky settings applied to staging, warm-up on
        /readyz (abort unless 200), then traffic switched. Raises PlatformError on abort."""


class Outcome(enum.IntEnum):
    DONE = 0
    FAILED_BEFORE_SWAP = 1
    ROLLED_BACK = 3
    ROLLBACK_FAILED = 4
    REFUSED = 5


class Release:
    """Runs the steps against ``platform``; ``timeline`` keeps (event, wall-clock time)."""

    def __init__(
        self,
        platform: Platform,
        *,
        smoke_environ: Mapping[str, str],
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        poll_interval: float = 10.0,
        poll_attempts: int = 30,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.platform = platform
        self.smoke_environ = smoke_environ
        self.wait_seconds = wait_seconds
        self.poll_interval = poll_interval
        self.poll_attempts = poll_attempts
        self.out = sys.stdout if out is None else out
        self.clock = clock
        self.timeline: list[tuple[str, float]] = []

    # --- the three programs ---------------------------------------------------------------

    def deploy(self, version: str, package: Path) -> Outcome:
        try:
            packaged = package_version(package)
        except PackageError as exc:
            return self.stop(Outcome.REFUSED, str(exc))
        if packaged != version:
            return self.stop(Outcome.REFUSED, f"{package} holds {packaged}, not {version}")
        previous = self.recorded("production")
        if not previous:
            return self.stop(
                Outcome.REFUSED,
                f"production's {RECORD} cannot be read: without it no rollback is possible",
            )
        if previous == version:
            return self.stop(Outcome.DONE, f"production already holds {version}")
        try:
            production, staging = self.platform.url("production"), self.platform.url("staging")
        except PlatformError as exc:
            return self.stop(Outcome.REFUSED, str(exc))
        self.event("recorded", f"production holds {previous}")
        try:
            self.platform.deploy_package("staging", package)
            if not self.serves(staging, version):
                return self.stop(Outcome.FAILED_BEFORE_SWAP, f"staging never served {version}")
            self.platform.set_app_settings("staging", {RECORD: version})
            self.event("migrating", "migrating the database (expand only)")
            self.platform.migrate()
        except PlatformError as exc:
            return self.stop(Outcome.FAILED_BEFORE_SWAP, f"staging: {exc}")
        if not self.smoke(staging, version):
            return self.stop(
                Outcome.FAILED_BEFORE_SWAP,
                "staging failed its smoke test: production untouched, staging holds the failure",
            )
        self.event("swapping", "swapping staging into production (warm-up on /readyz)")
        try:
            self.platform.swap()
        except PlatformError as exc:
            if self.recorded("production") == previous:
                return self.stop(Outcome.FAILED_BEFORE_SWAP, f"swap refused: {exc}")
            self.event("swap-failed", f"the swap failed half-way: {exc}")
        else:
            self.event("swapped", f"swapped; verifying production in {self.wait_seconds:g} s")
            time.sleep(self.wait_seconds)
            if self.serves(production, version) and self.smoke(production, version):
                return self.stop(Outcome.DONE, f"production serves {version}")
            self.event("production-check-failed", f"production failed its checks on {version}")
        return self.swap_back(failed=version, previous=previous)

    def recover(self, version: str) -> Outcome:
        """After a failed or cancelled release of ``version``: swap back if production holds it."""
        production = self.recorded("production")
        if production is None:
            return self.stop(Outcome.ROLLBACK_FAILED, f"production's {RECORD} cannot be read")
        if production != version:
            return self.stop(Outcome.DONE, f"production holds {production}: nothing to roll back")
        previous = self.recorded("staging")
        if not previous:
            return self.stop(Outcome.ROLLBACK_FAILED, f"staging's {RECORD} cannot be read")
        return self.swap_back(failed=version, previous=previous)

    def rollback(self, expected_version: str) -> Outcome:
        """The manual rollback: only when staging serves ``expected_version``."""
        try:
            staging = self.platform.url("staging")
        except PlatformError as exc:
            return self.stop(Outcome.REFUSED, str(exc))
        if not self.serves(staging, expected_version, attempts=3):
            return self.stop(
                Outcome.REFUSED,
                f"staging does not serve {expected_version}: no swap (it may hold a failed build)",
            )
        self.event("swapping", f"swapping {expected_version} back into production")
        try:
            self.platform.swap()
        except PlatformError as exc:
            return self.stop(Outcome.ROLLBACK_FAILED, f"swap failed: {exc}")
        return self.verify_rollback(expected_version, done=Outcome.DONE)

    # --- steps ----------------------------------------------------------------------------

    def swap_back(self, *, failed: str, previous: str) -> Outcome:
        production = self.recorded("production")
        if production == failed:
            self.event("swapping-back", f"swapping back to {previous}")
            try:
                self.platform.swap()
            except PlatformError as exc:
                return self.stop(Outcome.ROLLBACK_FAILED, f"swap back failed: {exc}")
        elif production != previous:
            return self.stop(
                Outcome.ROLLBACK_FAILED,
                f"production holds {production or 'an unreadable version'}, "
                f"neither {failed} nor {previous}",
            )
        return self.verify_rollback(previous, done=Outcome.ROLLED_BACK)

    def verify_rollback(self, version: str, *, done: Outcome) -> Outcome:
        time.sleep(self.wait_seconds)
        if version == NO_RELEASE:
            return self.stop(done, "production holds no release again")
        try:
            production = self.platform.url("production")
        except PlatformError as exc:
            return self.stop(Outcome.ROLLBACK_FAILED, str(exc))
        if self.serves(production, version):
            return self.stop(done, f"rolled back: production serves {version}")
        return self.stop(Outcome.ROLLBACK_FAILED, f"production does not serve {version}")

    def recorded(self, slot: Slot) -> str | None:
        try:
            value = self.platform.app_settings(slot).get(RECORD, "").strip()
        except PlatformError as exc:
            self.event("unreadable", f"{slot}'s settings cannot be read: {exc}")
            return None
        return value or None

    def serves(self, url: str, version: str, attempts: int | None = None) -> bool:
        found = check_health.wait_for_health(
            url,
            expect_version=version,
            attempts=attempts or self.poll_attempts,
            interval=self.poll_interval,
            timeout=10.0,
        )
        return found is not None

    def smoke(self, url: str, version: str) -> bool:
        self.event("smoke", f"smoke test of {url}")
        code = smoke_test.run(
            url, expect_version=version, environ=self.smoke_environ, out=self.out, err=self.out
        )
        return code == smoke_test.EXIT_OK

    def event(self, name: str, message: str) -> None:
        self.timeline.append((name, self.clock()))
        print(f"release: {message}", file=self.out, flush=True)

    def stop(self, outcome: Outcome, message: str) -> Outcome:
        self.event(outcome.name.lower(), f"{outcome.name}: {message}")
        return outcome


# --- command line ---------------------------------------------------------------------------


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 600:  # also refuses nan
        raise argparse.ArgumentTypeError("must be between 0 and 600 seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="release_command", required=True)
    package = commands.add_parser("package", help="build the deployment zip, version inside")
    package.add_argument("--version", required=True, metavar="SHA")
    package.add_argument("--output", type=Path, default=Path("dist/app.zip"))
    package.add_argument(
        "--python-version", help="the platform's CPython (default: the project's .python-version)"
    )

    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument(
        "--wait-seconds",
        type=_seconds,
        default=DEFAULT_WAIT_SECONDS,
        help=f"between a swap and its verification (default {DEFAULT_WAIT_SECONDS:g})",
    )
    deploy = commands.add_parser(
        "deploy", parents=[waiting], help="staging, migrate, smoke, swap, verify; swap back"
    )
    deploy.add_argument("--version", required=True, metavar="SHA")
    deploy.add_argument("--package", type=Path, required=True)
    recover = commands.add_parser(
        "recover", parents=[waiting], help="after a failed or cancelled release: swap back"
    )
    recover.add_argument("--version", required=True, metavar="SHA")
    rollback = commands.add_parser(
        "rollback", parents=[waiting], help="swap back the version staging serves, if expected"
    )
    rollback.add_argument("--expected-version", required=True, metavar="SHA")


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    if args.release_command == "package":
        from scripts.package import build

        try:
            built = build(args.version, args.output, args.python_version)
        except PackageError as exc:
            print(f"release package: {exc}", file=sys.stderr)
            return 1
        print(f"{built} holds {args.version}")
        return 0

    from scripts.azure_platform import AzurePlatform, ConfigurationError

    try:
        platform = AzurePlatform.from_environ(environ)
    except ConfigurationError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 2
    release = Release(platform, smoke_environ=environ, wait_seconds=args.wait_seconds)
    if args.release_command == "deploy":
        return release.deploy(args.version, args.package)
    if args.release_command == "recover":
        return release.recover(args.version)
    return release.rollback(args.expected_version)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="release.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
