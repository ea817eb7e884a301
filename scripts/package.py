"""Build the deployment package: the app's runtime files, its dependencies and its version.

    python manage.py release package --version SHA [--output dist/app.zip] [--python-version X.Y]

The package carries the commit it was built from in ``BUILD_VERSION``, which ``/healthz``
reports (shared/config.py): the version travels inside the code, so no app setting written
before or after a deploy can disagree with what a slot really runs. Dependencies are installed
for the platform's Linux x86_64 CPython, the project's ``.python-version`` unless told otherwise
(no remote build on the app). Standard library only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the Functions host runs; also what .funcignore and .dockerignore let through.
RUNTIME_PATHS = (
    "function_app.py",
    "host.json",
    "requirements.txt",
    "alembic.ini",
    "blueprints",
    "shared",
    "migrations",
)
VERSION_FILE = "BUILD_VERSION"
PYTHON_VERSION_FILE = ROOT / ".python-version"
SITE_PACKAGES = Path(".python_packages") / "lib" / "site-packages"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
_VERSION = re.compile(r"^[A-Za-z0-9._+-]{1,100}$")
_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "local.settings.json")


class PackageError(Exception):
    """The package cannot be built or read."""


def checked_version(version: str) -> str:
    if not _VERSION.match(version):
        raise PackageError(f"{version!r} is not a version (1-100 of A-Z a-z 0-9 . _ + -)")
    return version


def write_version(directory: Path, version: str) -> None:
    (directory / VERSION_FILE).write_text(checked_version(version) + "\n")


def assemble(target: Path, version: str, source: Path = ROOT) -> Path:
    """Copy the runtime files of ``source`` into ``target`` and stamp them with ``version``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PATHS:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name, ignore=_JUNK)
        else:
            shutil.copy2(path, target / name)
    write_version(target, version)
    return target


def install_dependencies(target: Path, python_version: str) -> None:
    platforms = [option for name in PLATFORMS for option in ("--platform", name)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(target / SITE_PACKAGES),
        *platforms,
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "-r",
        str(target / "requirements.txt"),
    ]
    if subprocess.run(command, check=False).returncode != 0:  # noqa: S603
        raise PackageError("installing the runtime dependencies failed (pip's output above)")


def zip_directory(directory: Path, output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(directory))
    return output


def package_version(package: Path) -> str:
    """The version stamped into a package: a zip, or a directory (the local drill's slots)."""
    try:
        if package.is_dir():
            text = (package / VERSION_FILE).read_text()
        else:
            with zipfile.ZipFile(package) as archive:
                text = archive.read(VERSION_FILE).decode()
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{package} has no readable {VERSION_FILE} ({exc})") from None
    return checked_version(text.strip())


def build(version: str, output: Path, python_version: str | None = None) -> Path:
    """The zip at ``output``, for ``python_version`` (default: the project's .python-version)."""
    with tempfile.TemporaryDirectory(prefix="stratus-package-") as temporary:
        app = assemble(Path(temporary) / "app", version)
        install_dependencies(app, python_version or PYTHON_VERSION_FILE.read_text().strip())
        return zip_directory(app, output)
