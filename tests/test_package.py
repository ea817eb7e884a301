"""The deployment package carries its version: /healthz reports it, whatever APP_VERSION says."""

from __future__ import annotations

import zipfile
from pathlib import Path

import httpx
import pytest

from scripts.package import (
    RUNTIME_PATHS,
    VERSION_FILE,
    PackageError,
    assemble,
    package_version,
    zip_directory,
)
from tests.conftest import app_env, migrate
from tests.support.devhost_process import DevhostProcess


def test_the_package_holds_the_runtime_files_and_its_version(tmp_path: Path) -> None:
    app = assemble(tmp_path / "app", "3f2a9c1")
    assert sorted(path.name for path in app.iterdir()) == sorted([*RUNTIME_PATHS, VERSION_FILE])
    assert not list(app.rglob("__pycache__"))
    archive = zip_directory(app, tmp_path / "dist" / "app.zip")
    assert package_version(archive) == package_version(app) == "3f2a9c1"
    with zipfile.ZipFile(archive) as opened:
        assert "shared/config.py" in opened.namelist()


def test_a_package_without_a_version_or_with_a_bad_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="BUILD_VERSION"):
        package_version(tmp_path)
    with pytest.raises(PackageError, match="not a version"):
        assemble(tmp_path / "app", "v1; rm -rf /")


def test_healthz_reports_the_version_inside_the_package_not_the_app_setting(
    tmp_path: Path,
) -> None:
    """What a slot reports is what it runs, even when APP_VERSION was written ahead of a deploy
    (or left behind by a failed one)."""
    app = assemble(tmp_path / "app", "3f2a9c1")
    database = f"sqlite:///{tmp_path / 'app.db'}"
    migrate(database)
    env = app_env(database, None, APP_VERSION="written-before-the-deploy")
    with DevhostProcess(env=env, script=str(app / "function_app.py"), cwd=app) as server:
        health = httpx.get(f"{server.url}/healthz", timeout=10)
    assert health.json() == {"status": "healthy", "version": "3f2a9c1"}
