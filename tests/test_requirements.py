"""The locked requirements: complete, hashed, installable by plain pip on this Python, compiled
from the requirements*.in files, and nothing of development in what is deployed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ("requirements.txt", "requirements-devhost.txt", "requirements-dev.txt")
DEVELOPMENT_ONLY = {"azure-functions-runtime", "azure-functions-runtime-v1", "protobuf", "uvicorn"}
_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", re.MULTILINE)
# A pin for other platforms only (the lock is universal), such as `; sys_platform == 'win32'`.
_PLATFORM_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==\S+ ; ", re.MULTILINE)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    return {canonical(package): version for package, version in _PIN.findall(text)}


def dry_run_install(name: str, tmp_path: Path) -> dict[str, str]:
    """What plain pip installs from one locked file into an empty environment of this Python:
    name -> version. ``--require-hashes`` makes pip refuse any package without a pin and hash."""
    report = tmp_path / f"{name}.json"
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    dry_run = ["--dry-run", "--ignore-installed", "--report", str(report)]
    result = subprocess.run(
        [*pip, *dry_run, "--require-hashes", "-r", str(ROOT / name)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    installed = json.loads(report.read_text())["install"]
    return {canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in installed}


@pytest.mark.parametrize("name", LOCKS)
def test_a_locked_file_installs_with_plain_pip_in_hash_checking_mode(name, tmp_path):
    assert sys.version_info[:2] == (3, 13)
    installed = dry_run_install(name, tmp_path)
    assert installed.items() <= pins(name).items()
    elsewhere = {canonical(package) for package in _PLATFORM_PIN.findall((ROOT / name).read_text())}
    assert set(pins(name)) - set(installed) <= elsewhere
    assert installed["azure-functions"].startswith("2.")
    if name == "requirements.txt":
        assert not DEVELOPMENT_ONLY & set(installed)
        assert "pytest" not in installed
        assert "azure-functions-worker" not in installed
    else:
        assert set(installed) >= DEVELOPMENT_ONLY


def test_every_locked_package_has_a_hash_and_the_locks_agree():
    for name in LOCKS:
        blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / name).read_text())
        requirements = [block for block in blocks if _PIN.match(block)]
        assert requirements, name
        for block in requirements:
            assert "--hash=sha256:" in block, f"{name}: {block.splitlines()[0]} has no hash"
    deployed, devhost, dev = (pins(name) for name in LOCKS)
    assert devhost.items() >= deployed.items()
    assert dev.items() >= devhost.items()


@pytest.mark.parametrize("name", LOCKS)
def test_the_locked_file_is_what_make_lock_compiles_from_its_in_file(name, tmp_path):
    """Compiling again, with the committed pins as the starting point, changes nothing: the .txt
    files were compiled from the .in files as they stand (edit a .in file, run `make lock`)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    assert uv, "uv is a dev requirement (requirements-dev.in)"
    for lock in LOCKS:  # the .in files constrain each other through the committed locks
        shutil.copy(ROOT / lock, tmp_path / lock)
    for source in ROOT.glob("requirements*.in"):
        shutil.copy(source, tmp_path / source.name)
    source = name.replace(".txt", ".in")
    compile_command = [uv, "pip", "compile", "--quiet", "--generate-hashes"]
    result = subprocess.run(
        [*compile_command, "--python-version", "3.13", "--universal", source, "-o", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / name).read_text() == (ROOT / name).read_text()
