"""Expand/contract, enforced: the previous build keeps working on this build's schema.

A release migrates the shared database while the previous build still serves production, and a
rollback swaps that build back without downgrading anything. So the previous build (the last
commit whose migration head is this head's parent) is checked out with ``git worktree``, and
its own smoke test and API tests run against a database migrated to this build's head. A
migration that is not backward compatible (a NOT NULL column without default, a drop, a rename)
fails them. The earlier build's tests use that database as it is through the conftest hook
``STRATUS_TEST_DATABASE_URL``.

When the earlier build's locked requirements differ from this one's, it gets a virtual
environment of its own, built by its own Makefile and cached by the requirements' hash under
``STRATUS_VENV_CACHE`` (default ``~/.cache/stratus/venvs``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from drills.database import libpq_url
from drills.instance import ServeInstance
from tests.conftest import (
    GIVEN_DATABASE,
    app_env,
    migrate,
)
from tests.support.services import temporary_database

ROOT = Path(__file__).resolve().parent.parent
VENV_CACHE = Path(
    os.environ.get("STRATUS_VENV_CACHE", Path.home() / ".cache" / "stratus" / "venvs")
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def git(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr.strip()}"
    return result.stdout.strip()


def scripts(build: Path) -> ScriptDirectory:
    return ScriptDirectory.from_config(Config(str(build / "alembic.ini")))


def only_head(build: Path) -> str:
    heads = scripts(build).get_heads()
    assert len(heads) == 1, f"{build}: several migration heads {heads}"
    return heads[0]


def previous_build(head: str) -> str:
    """The last commit whose head is ``head``'s parent: the one before the commit that added
    ``head``, or HEAD itself while ``head`` is not committed yet."""
    path = Path(scripts(ROOT).get_revision(head).path).relative_to(ROOT)
    added = git("log", "-1", "--format=%H", "--diff-filter=A", "--", str(path))
    if not added:
        return git("rev-parse", "HEAD")
    try:
        return git("rev-parse", f"{added}^")
    except AssertionError:
        pytest.fail(f"the parent of {added} is missing: a shallow clone? (fetch-depth: 0)")


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="stratus-n-1-") as parent:
        path = Path(parent) / "previous"
        git("worktree", "add", "--detach", str(path), commit)
        try:
            yield path
        finally:
            git("worktree", "remove", "--force", str(path))


def requirements_hash(build: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(build.glob("requirements*")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def python_for(build: Path) -> str:
    """This environment's interpreter when the build locks the same requirements, else the
    build's own environment, made once by its own Makefile and cached by the requirements."""
    key = requirements_hash(build)
    if key == requirements_hash(ROOT):
        return sys.executable
    venv = VENV_CACHE / key
    marker = venv / ".dev-installed"
    if not marker.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["make", "-C", str(build), f"VENV={venv}", str(marker)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return str(venv / "bin" / "python")


def users(database: str) -> int:
    with psycopg.connect(libpq_url(database)) as connection:
        row = connection.execute("SELECT count(*) FROM users").fetchone()
    assert row is not None
    return int(row[0])


def test_the_previous_build_passes_its_smoke_and_api_tests_on_this_builds_schema(
    redis_url: str,
) -> None:
    head = only_head(ROOT)
    parent = scripts(ROOT).get_revision(head).down_revision
    if parent is None:
        pytest.skip(f"only one migration ({head}): no earlier build to run on this schema")
    commit = previous_build(head)
    with worktree(commit) as build, temporary_database("stratus_n_1") as database:
        assert only_head(build) == parent, f"{commit[:12]} is at {only_head(build)}, not {parent}"
        python = python_for(build)
        migrate(database)  # this build's head
        env = app_env(database, redis_url, APP_VERSION=f"previous-{commit[:12]}")
        child = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

        def previous(*command: str, **extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [python, *command],
                cwd=build,
                env={**child, **env, **extra},
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )

        absent = str(build / "absent.settings.json")
        seeded = previous("manage.py", "--settings", absent, "create-superuser")
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr

        server = ServeInstance("previous", python=python)
        server.start(build, env)
        try:
            smoke = previous(
                "manage.py",
                "--settings",
                absent,
                "smoke",
                server.url,
                "--expect-version",
                env["APP_VERSION"],
            )
        finally:
            server.stop()
        assert smoke.returncode == 0, smoke.stdout[-4000:] + smoke.stderr[-2000:]

        before = users(database)
        api_tests = sorted(
            str(path.relative_to(build)) for path in build.glob("tests/test_api_*.py")
        )
        assert api_tests, f"{commit[:12]} has no API tests"
        suite = previous(
            "-m", "pytest", "-q", "-p", "no:cacheprovider", *api_tests, **{GIVEN_DATABASE: database}
        )
        assert suite.returncode == 0, suite.stdout[-6000:] + suite.stderr[-2000:]
        # The earlier build's tests wrote through its own code into this database: they did run
        # on this schema (a build without the conftest hook would have made its own database).
        assert users(database) > before
