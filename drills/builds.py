"""Builds for drills and tests: copies of this checkout stamped with a version, and the changes a
later build would bring (a migration, a defect), made in the copy and never in the checkout.

A build directory is the local form of a release package: ``manage.py serve`` runs from it and
``/healthz`` reports its ``BUILD_VERSION`` (scripts/package.py writes it into Azure's zip too).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from scripts.package import write_version

ROOT = Path(__file__).resolve().parent.parent
_LEFT_OUT = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".python_packages",
    "local.settings.json",
    "*.db",
    "dist",
    "BUILD_VERSION",
)


def additive_column(name: str) -> tuple[str, str]:
    """Upgrade and downgrade adding a column the previous build neither reads nor writes: what
    an expand step looks like."""
    return (
        f'op.add_column("items", sa.Column("{name}", sa.Text(), nullable=True))',
        f'op.drop_column("items", "{name}")',
    )


_MIGRATION = '''"""{message}

Revision ID: {revision}
Revises: {down_revision}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {upgrade}


def downgrade() -> None:
    {downgrade}
'''

# Appended to a build's shared/crud.py: item writes need a setting this build introduced.
_NEEDS_SETTING = """

# --- the drill's defect: item writes need {setting}, which was set on staging only ---
import os as _drill_os  # noqa: E402

_create_item_without_check = create_item


def create_item(*args, **kwargs):  # type: ignore[no-untyped-def]
    if not _drill_os.environ.get("{setting}"):
        raise RuntimeError("{setting} is not set")
    return _create_item_without_check(*args, **kwargs)
"""


def copy_build(target: Path, version: str, source: Path = ROOT) -> Path:
    """A copy of ``source`` (code, migrations, manage.py and devhost) holding ``version``."""
    shutil.copytree(source, target, ignore=_LEFT_OUT)
    write_version(target, version)
    return target


def head_revision(build: Path) -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    (head,) = ScriptDirectory.from_config(Config(str(build / "alembic.ini"))).get_heads()
    return head


def add_migration(build: Path, message: str, upgrade: str, downgrade: str) -> str:
    """A new revision on top of the build's head; its id."""
    down_revision = head_revision(build)
    revision = uuid.uuid4().hex[:12]
    slug = "_".join(message.lower().split())[:40]
    (build / "migrations" / "versions" / f"{revision}_{slug}.py").write_text(
        _MIGRATION.format(
            message=message,
            revision=revision,
            down_revision=down_revision,
            upgrade=upgrade,
            downgrade=downgrade,
        )
    )
    return revision


def require_setting_for_item_writes(build: Path, setting: str) -> None:
    """The build fails every item write unless ``setting`` is set; nothing else changes, so
    /healthz, /readyz and reads pass wherever it runs."""
    crud = build / "shared" / "crud.py"
    crud.write_text(crud.read_text() + _NEEDS_SETTING.format(setting=setting))
