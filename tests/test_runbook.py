"""docs/runbook.md matches the code: its shell blocks run, its routes, settings and alerts exist."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, app_env, create_superuser, migrate
from tests.support.services import temporary_database

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "docs" / "runbook.md"
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "local.*"
)


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", RUNBOOK.read_text(), re.DOTALL)


def test_every_shell_block_runs_against_a_real_instance(tmp_path, redis_url):
    """All ``sh`` blocks, in order, as an operator would paste them, in a copy of the repo."""
    from tests.support.devhost_process import DevhostProcess

    checkout = tmp_path / "stratus"
    shutil.copytree(ROOT, checkout, ignore=COPY_IGNORE)
    (checkout / ".venv").symlink_to(ROOT / ".venv")
    script = "set -euo pipefail\n" + "\n".join(_blocks("sh"))
    with temporary_database() as database:
        migrate(database)
        env = app_env(database, redis_url)
        create_superuser(env)
        with DevhostProcess(env=env, cwd=checkout) as server:
            result = subprocess.run(
                ["bash", "-c", script],
                cwd=checkout,
                env={
                    **os.environ,
                    **env,
                    "BASE": server.url,
                    "EXPECTED_VERSION": env["APP_VERSION"],
                    "ADMIN_EMAIL": SUPERUSER,
                    "ADMIN_PASSWORD": SUPERUSER_PASSWORD,
                },
                capture_output=True,
                text=True,
                timeout=300,
            )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert '"status":"healthy"' in out
    assert '"details"' in out  # /readyz as a superuser
    assert "OK: 11 passed" in out  # the smoke test
    assert "(head)" in out  # manage.py migrate
    generated = list((checkout / "migrations" / "versions").glob("*describe_the_change.py"))
    assert len(generated) == 1


def azure_adapter_commands() -> set[str]:
    """The ``az`` commands the release's Azure adapter runs (the leading words of each call)."""
    tree = ast.parse((ROOT / "scripts" / "azure_platform.py").read_text())
    commands = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "az":
            words = []
            for argument in node.args:
                if not isinstance(argument, ast.Constant) or str(argument.value).startswith("-"):
                    break
                words.append(str(argument.value))
            commands.add(" ".join(words))
    return commands


def test_the_azure_commands_are_the_release_programs_commands():
    """An operator's az command in the runbook is one the release itself runs."""
    known = azure_adapter_commands()
    assert "functionapp deployment slot swap" in known
    checked = 0
    for block in _blocks("azurecli"):
        for line in (line.strip() for line in block.splitlines()):
            if line.startswith("az "):
                words = [word for word in line.split()[1:] if not word.startswith(("-", "<"))]
                assert any(" ".join(words[:n]) in known for n in (3, 4, 5)), line
                checked += 1
            elif line.startswith("python "):
                assert (ROOT / line.split()[1]).is_file(), line
                checked += 1
    assert checked


def test_every_route_in_the_runbook_exists():
    import function_app  # noqa: F401  (registers the routes)
    from shared.http import ROUTES

    templates = {"/" + spec.path.strip("/") for spec in ROUTES}  # the OpenAPI form
    mentioned = set(re.findall(r"(/api/v1/[\w/{}.-]*\w|/healthz|/readyz)", RUNBOOK.read_text()))
    for path in mentioned:
        concrete = path.rstrip("/")
        assert any(
            re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(t)), concrete) for t in templates
        ), path


def test_every_app_setting_in_the_runbook_exists():
    import json

    sample = set(json.loads((ROOT / "local.settings.sample.json").read_text())["Values"])
    text = RUNBOOK.read_text()
    prefixes = ("CACHE_", "DB_", "JWT_", "REDIS_", "READINESS_", "AZURE_", "SMOKE_", "FIRST_")
    mentioned = {
        name for name in re.findall(r"\b[A-Z][A-Z0-9_]{3,}\b", text) if name.startswith(prefixes)
    }
    smoke_settings = set(
        re.findall(r"\bSMOKE_[A-Z_]+", (ROOT / "scripts" / "smoke_test.py").read_text())
    )
    from scripts.azure_platform import CONFIG

    release_variables = set(CONFIG.values())
    unknown = mentioned - sample - smoke_settings - release_variables
    assert not unknown, unknown


@pytest.mark.parametrize(
    ("alert", "threshold"),
    [
        ("stratus-http-5xx-rate", "threshold: 1\n"),
        ("stratus-p95-latency", "threshold: 2000\n"),
        ("stratus-restarts", "threshold: 2\n"),
        ("stratus-plan-cpu-high", "threshold: 80\n"),
        ("stratus-plan-memory-high", "threshold: 80\n"),
    ],
)
def test_the_alert_table_matches_the_alerts_as_code(alert, threshold):
    bicep = (ROOT / "infra" / "modules" / "alerts.bicep").read_text()
    assert f"`{alert}`" in RUNBOOK.read_text()
    definition = bicep[bicep.index(f"name: '{alert}'") :]
    next_alert = definition.find("\nresource ", 1)
    assert threshold in definition[: next_alert if next_alert > 0 else None]
