"""Lint every migration's SQL with squawk: what a live slot swap cannot survive.

    python -m scripts.lint_migrations        (run by `make lint`)

Each revision's offline SQL (``alembic upgrade <parent>:<revision> --sql``, PostgreSQL dialect,
no database needed) goes into a file of its own, and squawk (PyPI ``squawk-cli``) reads them with
the rules of ``.squawk.toml``. A deliberate exception is written in the migration itself, with
its reason, and covers that migration only:

    # squawk-ignore ban-drop-column: unused since release 2026-12 (contract step)

An exception without a reason is an error. Exit status: 0 clean, 1 findings, 2 cannot run.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path.cwd()
OFFLINE_URL = "postgresql+psycopg://lint@localhost/lint"  # a dialect only: never connected to
MIN_REASON_CHARS = 10
_IGNORE = re.compile(r"#\s*squawk-ignore\b(?P<rest>.*)$", re.MULTILINE)
_RULES = re.compile(r"^\s*(?P<rules>[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*(?::\s*(?P<reason>.*))?$")


@dataclass(frozen=True)
class Migration:
    revision: str
    down_revision: str | None
    path: Path


def migrations(root: Path) -> list[Migration]:
    """Every revision, oldest first."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(Config(str(root / "alembic.ini")))
    found = []
    for script in scripts.walk_revisions():
        down = script.down_revision
        if isinstance(down, tuple | list):
            raise SystemExit(f"{script.revision} merges heads: lint it by hand")
        found.append(Migration(script.revision, down, Path(script.path)))
    return list(reversed(found))


def offline_sql(root: Path, migration: Migration) -> str:
    from alembic import command
    from alembic.config import Config

    buffer = io.StringIO()
    config = Config(str(root / "alembic.ini"), output_buffer=buffer)
    config.set_main_option("sqlalchemy.url", OFFLINE_URL)
    command.upgrade(config, f"{migration.down_revision or 'base'}:{migration.revision}", sql=True)
    return buffer.getvalue()


def exceptions(migration: Migration) -> tuple[list[str], list[str]]:
    """(rules the migration excepts, problems with how it says so)."""
    rules: list[str] = []
    problems: list[str] = []
    for match in _IGNORE.finditer(migration.path.read_text()):
        parsed = _RULES.match(match.group("rest"))
        reason = (parsed.group("reason") or "").strip() if parsed else ""
        if parsed is None or len(reason) < MIN_REASON_CHARS:
            problems.append(
                f"{migration.path.name}: '# squawk-ignore <rule>: <reason>' needs its reason"
            )
            continue
        rules += [rule.strip() for rule in parsed.group("rules").split(",")]
    return rules, problems


def squawk_binary() -> str | None:
    beside = Path(sys.executable).parent / "squawk"
    return str(beside) if beside.exists() else shutil.which("squawk")


def lint(root: Path) -> int:
    squawk = squawk_binary()
    if squawk is None:
        print("squawk is not installed (pip install squawk-cli)", file=sys.stderr)
        return 2
    logging.getLogger("shared.config").setLevel(logging.ERROR)  # no development-secret notes
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="stratus-squawk-") as directory:
        files = []
        for migration in migrations(root):
            rules, found = exceptions(migration)
            problems += found
            header = "".join(f"-- squawk-ignore-file {rule}\n" for rule in rules)
            sql = Path(directory) / f"{migration.path.stem}.sql"
            sql.write_text(header + offline_sql(root, migration))
            files.append(str(sql))
        result = subprocess.run(  # noqa: S603
            [squawk, "--config", str(root / ".squawk.toml"), "--reporter", "gcc", *files],
            capture_output=True,
            text=True,
            check=False,
        )
    print(result.stdout.replace(directory + "/", "migrations: "), end="")
    print(result.stderr, end="", file=sys.stderr)
    for problem in problems:
        print(problem, file=sys.stderr)
    if result.returncode not in (0, 1):
        return 2
    if result.returncode or problems:
        return 1
    print(f"squawk: {len(files)} migration(s) clean")
    return 0


if __name__ == "__main__":  # python -m: the checkout is on sys.path, as env.py needs
    sys.exit(lint(ROOT))
