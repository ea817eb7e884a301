"""squawk over each migration's SQL (make lint): what a live swap cannot survive is refused.

Each case adds one migration to a copy of this checkout and runs the linter there, as
`make lint` runs it here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drills.builds import add_migration, additive_column, copy_build

DOWN = "pass"


def lint_in(build: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.lint_migrations"],
        cwd=build,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def lint(tmp_path: Path, upgrade: str, comment: str = "") -> subprocess.CompletedProcess[str]:
    build = copy_build(tmp_path / "build", "lint")
    add_migration(build, "under lint", f"{comment}{upgrade}", DOWN)
    return lint_in(build)


def test_the_shipped_migrations_are_clean() -> None:
    result = lint_in(Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout


@pytest.mark.parametrize(
    ("upgrade", "rule"),
    [
        (
            'op.add_column("items", sa.Column("x", sa.Text(), nullable=False))',
            "adding-required-field",
        ),
        (
            'op.create_index("ix_items_title", "items", ["title"])',
            "require-concurrent-index-creation",
        ),
        ('op.drop_column("items", "description")', "ban-drop-column"),
        ('op.alter_column("items", "description", new_column_name="details")', "renaming-column"),
        ('op.alter_column("items", "title", type_=sa.Text())', "changing-column-type"),
    ],
)
def test_a_step_the_previous_build_cannot_survive_fails_the_lint(
    tmp_path: Path, upgrade: str, rule: str
) -> None:
    result = lint(tmp_path, upgrade)
    assert result.returncode == 1, result.stdout + result.stderr
    assert rule in result.stdout


def test_expand_steps_pass_the_lint(tmp_path: Path) -> None:
    concurrently = (
        "with op.get_context().autocommit_block():\n"
        '        op.create_index("ix_items_title", "items", ["title"], '
        "postgresql_concurrently=True)\n"
        f"    {additive_column('note')[0]}"
    )
    result = lint(tmp_path, concurrently)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_deliberate_exception_needs_its_reason_inline(tmp_path: Path) -> None:
    drop = 'op.drop_column("items", "description")'
    reason = "# squawk-ignore ban-drop-column: unused since the release before (contract)\n    "
    assert lint(tmp_path / "with", drop, reason).returncode == 0

    bare = lint(tmp_path / "without", drop, "# squawk-ignore ban-drop-column\n    ")
    assert bare.returncode == 1
    assert "needs its reason" in bare.stderr
