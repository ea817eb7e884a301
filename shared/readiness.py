"""Readiness checks with deadlines: database, migrations, cache and config.

A round runs every check concurrently, each in its own thread, and waits for them under one
budget (``READINESS_TIMEOUT_MS``). A check that has not answered by then fails as timed out; its
thread is left to finish on its own (its database waits end at a deadline of the same budget),
and no second copy of that check starts until it does, so a hung dependency costs one thread,
not one per probe. The result is cached for ``READINESS_CACHE_MS`` and only one round is in
flight at a time: a burst of probes costs one round of checks. Rounds and checks run on the
probe's own threads, never on the caller's: ``start()`` hands back a future, so the async
``/readyz`` awaits it on the event loop and never queues behind API requests for a thread.
A check's status is logged when it changes, not every round.

The first round starts with a warm-up (importing SQLAlchemy and Alembic, reading the migration
scripts), waited for at most half the budget, so that a cold instance's first checks do not
spend their budget on imports; the round as a whole still ends within the budget.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from shared.config import Settings, get_settings
from shared.deadline import database_deadline

logger = logging.getLogger(__name__)

Status = Literal["pass", "warn", "fail"]
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CheckResult:
    status: Status
    reason: str | None = None
    latency_ms: float = 0.0


@dataclass(frozen=True)
class Report:
    checks: Mapping[str, CheckResult]
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ok(self) -> bool:
        return all(result.status != "fail" for result in self.checks.values())

    @property
    def status(self) -> str:
        if not self.ok:
            return "not_ready"
        if any(result.status == "warn" for result in self.checks.values()):
            return "degraded"
        return "ready"

    def public(self) -> dict[str, object]:
        """Statuses only: no reasons, latencies or addresses for anonymous callers."""
        return {
            "status": self.status,
            "checks": {name: result.status for name, result in self.checks.items()},
        }

    def detailed(self) -> dict[str, object]:
        return {
            **self.public(),
            "checked_at": self.checked_at.isoformat(),
            "details": {
                name: {"latency_ms": round(result.latency_ms, 2), "reason": result.reason}
                for name, result in self.checks.items()
            },
        }


Check = Callable[[], CheckResult]


class ReadinessProbe:
    def __init__(
        self,
        checks: Mapping[str, Check],
        budget_seconds: float,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        warm_up: Callable[[], object] | None = None,
    ) -> None:
        self._checks = dict(checks)
        self._warm_up = warm_up
        self._budget = budget_seconds
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Report] | None = None
        self._round: Future[Report] | None = None
        self._running: dict[str, Future[CheckResult]] = {}
        self._logged: dict[str, CheckResult] = {}
        # Enough threads for one hung copy of every check plus a fresh round.
        self._pool = ThreadPoolExecutor(
            max_workers=2 * len(self._checks) or 1, thread_name_prefix="readiness"
        )
        self._rounds = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness-round")
        self.rounds = 0

    def start(self) -> Future[Report]:
        """The cached report, the round in flight, or a new round on the probe's own thread."""
        with self._lock:
            if self._cached and self._clock() - self._cached[0] < self._cache_seconds:
                cached: Future[Report] = Future()
                cached.set_result(self._cached[1])
                return cached
            if self._round is not None:
                return self._round
            pending = self._round = Future()
        # In the caller's context: the round's log lines carry the invocation that started it.
        self._rounds.submit(contextvars.copy_context().run, self._complete, pending)
        return pending

    def report(self) -> Report:
        return self.start().result()

    def _complete(self, pending: Future[Report]) -> None:
        try:
            report = self._run_round()
        except Exception as exc:  # a bug of the probe's own: every waiting caller hears it
            with self._lock:
                self._round = None
            pending.set_exception(exc)
            return
        with self._lock:
            self._cached = (self._clock(), report)
            self._round = None
        pending.set_result(report)

    def _run_round(self) -> Report:
        self.rounds += 1
        started = time.perf_counter()
        if self._warm_up is not None:
            warm_up, self._warm_up = self._warm_up, None
            wait([self._pool.submit(_warm, warm_up)], timeout=self._budget / 2)
        futures: dict[str, Future[CheckResult]] = {}
        results: dict[str, CheckResult] = {}
        for name, check in self._checks.items():
            previous = self._running.get(name)
            if previous is not None and not previous.done():
                results[name] = CheckResult("fail", "previous check still running")
                continue
            futures[name] = self._running[name] = self._pool.submit(_timed, check)
        wait(futures.values(), timeout=max(0.0, started + self._budget - time.perf_counter()))
        for name, future in futures.items():
            if not future.done():
                results[name] = CheckResult(
                    "fail", "timed out", (time.perf_counter() - started) * 1000
                )
            else:
                try:
                    results[name] = future.result()
                except Exception as exc:  # a check's own bug must not break the probe
                    results[name] = CheckResult("fail", type(exc).__name__)
        ordered = {name: results[name] for name in self._checks}
        self._log_changes(ordered)
        return Report(ordered)

    def _log_changes(self, results: Mapping[str, CheckResult]) -> None:
        for name, result in results.items():
            before = self._logged.get(name)
            if before is None and result.status == "pass":
                self._logged[name] = result
            elif before is None or (before.status, before.reason) != (result.status, result.reason):
                self._logged[name] = result
                level = logging.INFO if result.status == "pass" else logging.WARNING
                logger.log(level, "readiness %s: %s (%s)", name, result.status, result.reason)


def _warm(warm_up: Callable[[], object]) -> None:
    try:
        warm_up()
    except Exception as exc:  # the checks themselves report what is wrong
        logger.info("readiness warm-up failed: %s", type(exc).__name__)


def _timed(check: Check) -> CheckResult:
    started = time.perf_counter()
    result = check()
    return CheckResult(result.status, result.reason, (time.perf_counter() - started) * 1000)


def check_config(settings: Settings) -> CheckResult:
    if settings.errors:
        return CheckResult("fail", "; ".join(settings.errors))
    return CheckResult("pass")


def check_database(seconds: float) -> CheckResult:
    from sqlalchemy import text

    from shared.db import get_engine

    try:
        with database_deadline(seconds), get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return CheckResult("fail", type(exc).__name__)
    return CheckResult("pass")


@dataclass(frozen=True)
class MigrationScripts:
    """The Alembic revisions this build ships: its heads and every revision it knows."""

    heads: frozenset[str]
    known: frozenset[str]


@functools.cache
def migration_scripts() -> MigrationScripts:
    """Read once, from the scripts: no database access."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    known = frozenset(script.revision for script in scripts.walk_revisions())
    return MigrationScripts(heads=frozenset(scripts.get_heads()), known=known)


def expected_heads() -> frozenset[str]:
    """The Alembic head revisions shipped with this build."""
    return migration_scripts().heads


def schema_verdict(current: frozenset[str], scripts: MigrationScripts) -> CheckResult:
    """The N-1 rule: this build serves its own head and any schema a newer build expanded.

    A revision this build does not know was written by a newer build (migrations are
    expand-only), so the previous build stays ready after a release migrates, and a rollback swap
    can warm up. A schema behind this build's head lacks what this code needs.
    """
    heads = sorted(scripts.heads)
    if current == scripts.heads:
        return CheckResult("pass")
    newer = sorted(current - scripts.known)
    if newer:
        return CheckResult(
            "warn",
            f"schema at {newer}, newer than this build's head {heads} (expanded by a newer build)",
        )
    if not current:
        return CheckResult("fail", f"no schema (database at base); this build needs {heads}")
    return CheckResult(
        "fail", f"schema at {sorted(current)}, behind this build's head {heads}: run the migrations"
    )


def check_migrations(seconds: float) -> CheckResult:
    from sqlalchemy import text

    from shared.db import get_engine

    try:
        with database_deadline(seconds), get_engine().connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            current = frozenset(rows)
    except Exception as exc:
        return CheckResult("fail", f"cannot read alembic_version ({type(exc).__name__})")
    return schema_verdict(current, migration_scripts())


def check_cache() -> CheckResult:
    """Redis down is only a warning: the in-process fallback keeps serving. Also a reconnect try."""
    from shared.cache import get_cache

    if get_cache().ping():
        return CheckResult("pass")
    return CheckResult("warn", "Redis unreachable; serving from the in-process cache")


def warm_up() -> None:
    """No network I/O: the imports, the engine and cache objects and the migration heads."""
    from shared.cache import get_cache
    from shared.db import get_engine

    get_engine()
    get_cache()
    migration_scripts()


def build_probe(settings: Settings) -> ReadinessProbe:
    budget = settings.readiness_timeout_ms / 1000
    checks: dict[str, Check] = {
        "database": functools.partial(check_database, budget),
        "migrations": functools.partial(check_migrations, budget),
    }
    if settings.redis_url:
        checks["cache"] = check_cache
    checks["config"] = functools.partial(check_config, settings)
    return ReadinessProbe(
        checks,
        budget_seconds=budget,
        cache_seconds=settings.readiness_cache_ms / 1000,
        warm_up=warm_up,
    )


@functools.cache
def get_probe() -> ReadinessProbe:
    return build_probe(get_settings())
