"""The release program's Azure side, through an ``az`` stand-in on PATH that logs every call.

The program's decisions under load, against real slots, are the release drill's
(tests/test_release_drill.py); here: what the Azure adapter asks ``az`` for, that the migration's
firewall rule is closed whatever happens, and the decisions that must be taken before anything
changes (an unreadable production version, a package that is not the version released) or
without any probe at all (recover after a cancelled run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scripts.azure_platform import AzureApp, AzurePlatform
from scripts.package import assemble, zip_directory
from scripts.release import NO_RELEASE, PlatformError
from tests.support import az_stand_in

ROOT = Path(__file__).resolve().parent.parent
APP = AzureApp(
    resource_group="rg-stratus",
    app_name="func-stratus",
    postgres_server="psql-stratus",
    database="stratus",
    deploy_user="gh-release",
    identity_name="id-stratus",
)
CONFIG_ENV = {
    "AZURE_RESOURCE_GROUP": APP.resource_group,
    "AZURE_FUNCTIONAPP_NAME": APP.app_name,
    "AZURE_POSTGRES_SERVER": APP.postgres_server,
    "AZURE_POSTGRES_DATABASE": APP.database,
    "AZURE_DEPLOY_PRINCIPAL_NAME": APP.deploy_user,
    "AZURE_APP_IDENTITY_NAME": APP.identity_name,
}
TARGET = ["--resource-group", APP.resource_group, "--name", APP.app_name]


def world(production: str = "aaa111", staging: str = "bbb222") -> dict[str, Any]:
    def slot(version: str, host: str) -> dict[str, Any]:
        settings = {"APP_VERSION": version, "OTEL_SERVICE_NAME": host}
        return {"settings": settings, "host": f"{host}.azurewebsites.net", "package": None}

    return {
        "app": {
            "sticky": ["OTEL_SERVICE_NAME"],
            "slots": {
                "production": slot(production, "func-stratus"),
                "staging": slot(staging, "func-stratus-staging"),
            },
        },
        "postgres": {"host": "127.0.0.1", "rules": []},
        "identity": {"name": APP.identity_name, "principalId": "0000-identity-oid"},
        "token": "not-a-real-token",
    }


class Azure:
    """The stand-in installed on PATH for one test: its world, and the calls it received."""

    def __init__(self, tmp_path: Path, state: dict[str, Any]) -> None:
        self.bin = tmp_path / "bin"
        self.log = tmp_path / "az.log"
        self.state = az_stand_in.install(self.bin, state, self.log)

    def calls(self) -> list[list[str]]:
        return az_stand_in.calls(self.log)

    def commands(self) -> list[str]:
        """Each call's command words (what precedes its first option)."""
        return [" ".join(az_stand_in.parse(call)[0]) for call in self.calls()]

    def world(self) -> dict[str, Any]:
        import json

        loaded: dict[str, Any] = json.loads(self.state.read_text())
        return loaded


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


@pytest.fixture
def runner_ip() -> Iterator[str]:
    """Stands in for the public what-is-my-address service."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"203.0.113.7"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_adapter_reads_writes_deploys_and_swaps_through_az(
    tmp_path: Path, on_path: Path
) -> None:
    azure = Azure(tmp_path, world())
    platform = AzurePlatform(APP, {})
    assert platform.app_settings("production")["APP_VERSION"] == "aaa111"
    package = tmp_path / "app.zip"
    package.write_bytes(b"zip")
    platform.deploy_package("staging", package)
    platform.set_app_settings("staging", {"APP_VERSION": "ccc333"})
    assert platform.url("staging") == "https://func-stratus-staging.azurewebsites.net"
    assert platform.url("staging") == "https://func-stratus-staging.azurewebsites.net"  # cached
    platform.swap()

    after = azure.world()["app"]["slots"]
    assert after["production"]["settings"] == {
        "APP_VERSION": "ccc333",  # travelled with the build
        "OTEL_SERVICE_NAME": "func-stratus",  # sticky: stayed
    }
    assert after["production"]["package"] == str(package)
    calls = azure.calls()
    assert calls[1][:4] == ["functionapp", "deployment", "source", "config-zip"]
    assert [*TARGET, "--slot", "staging", "--src", str(package)] == calls[1][4:12]
    remote = calls[1].index("--build-remote")
    assert calls[1][remote + 1] == "false"
    settings = calls[2].index("--settings")
    assert calls[2][4:settings] == [*TARGET, "--slot", "staging"]
    assert calls[2][settings + 1] == "APP_VERSION=ccc333"
    swap = calls[-1]
    assert swap[:4] == ["functionapp", "deployment", "slot", "swap"]
    assert swap[4:12] == [*TARGET, "--slot", "staging", "--target-slot", "production"]
    assert azure.commands().count("functionapp show") == 1


def test_an_az_failure_is_a_platform_error_naming_the_command_and_the_cause(
    tmp_path: Path, on_path: Path
) -> None:
    state = world()
    state["failing"] = {"functionapp deployment slot swap": "ERROR: Cannot swap: warm-up failed"}
    Azure(tmp_path, state)
    with pytest.raises(PlatformError, match=r"az functionapp deployment slot swap.*warm-up failed"):
        AzurePlatform(APP, {}).swap()


def install_psql(bin_dir: Path, log: Path, fail_on: str = "") -> None:
    """A psql stand-in: logs its arguments; fails when running the script named ``fail_on``."""
    script = bin_dir / "psql"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> "{log}"\n'
        f'case "$*" in *"{fail_on or "never"}"*) echo "psql: error" >&2; exit 3 ;; esac\n'
    )
    script.chmod(0o755)


def test_a_failed_migration_still_closes_the_firewall_rule(
    tmp_path: Path, on_path: Path, runner_ip: str
) -> None:
    azure = Azure(tmp_path, world())
    psql_log = tmp_path / "psql.log"
    install_psql(azure.bin, psql_log, fail_on="bootstrap-roles.sql")
    with pytest.raises(PlatformError, match="psql"):
        AzurePlatform(APP, {}, ip_service=runner_ip).migrate()
    commands = azure.commands()
    assert commands[0] == "postgres flexible-server firewall-rule create"
    assert commands[-1] == "postgres flexible-server firewall-rule delete"
    assert azure.world()["postgres"]["rules"] == []
    create = azure.calls()[0]
    assert create[create.index("--start-ip-address") + 1] == "203.0.113.7"
    bootstrap = psql_log.read_text()
    # The one role, created once for the identity both slots run as.
    assert f"app_role={APP.identity_name}" in bootstrap and "app_oid=0000-identity-oid" in bootstrap
    assert "not-a-real-token" not in bootstrap  # the token travels in PGPASSWORD only


def test_migrate_runs_roles_then_alembic_and_closes_the_rule_when_alembic_fails(
    tmp_path: Path, on_path: Path, runner_ip: str
) -> None:
    """Alembic signs in as the release's identity with sslmode=require; the local server has no
    TLS, so it fails where Azure's would be reached, after the roles, before the grants."""
    azure = Azure(tmp_path, world())
    psql_log = tmp_path / "psql.log"
    install_psql(azure.bin, psql_log)
    with pytest.raises(PlatformError, match=r"manage\.py migrate failed"):
        AzurePlatform(APP, {}, ip_service=runner_ip).migrate()
    assert "bootstrap-roles.sql" in psql_log.read_text()
    assert "grant-app-access.sql" not in psql_log.read_text()
    assert azure.world()["postgres"]["rules"] == []


def release_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **CONFIG_ENV, "PATH": f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "manage.py", "release", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_release_aborts_before_any_change_when_productions_version_is_unknown(
    tmp_path: Path,
) -> None:
    state = world()
    state["failing"] = {"functionapp config appsettings list": "ERROR: (AuthorizationFailed)"}
    azure = Azure(tmp_path, state)
    package = zip_directory(assemble(tmp_path / "app", "ccc333"), tmp_path / "app.zip")
    result = release_cli(
        tmp_path, "deploy", "--version", "ccc333", "--package", str(package), "--wait-seconds", "0"
    )
    assert result.returncode == 5, result.stdout + result.stderr
    assert "no rollback is possible" in result.stdout
    assert azure.commands() == ["functionapp config appsettings list"]


def test_a_release_refuses_a_package_that_holds_another_version(tmp_path: Path) -> None:
    azure = Azure(tmp_path, world())
    package = zip_directory(assemble(tmp_path / "app", "other1"), tmp_path / "app.zip")
    result = release_cli(tmp_path, "deploy", "--version", "ccc333", "--package", str(package))
    assert result.returncode == 5
    assert "holds other1, not ccc333" in result.stdout
    assert azure.calls() == []


def test_recover_does_nothing_unless_production_holds_the_failed_release(tmp_path: Path) -> None:
    azure = Azure(tmp_path, world(production="aaa111", staging="ccc333"))
    result = release_cli(tmp_path, "recover", "--version", "ccc333", "--wait-seconds", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to roll back" in result.stdout
    assert "functionapp deployment slot swap" not in azure.commands()


def test_recover_after_a_cancelled_run_swaps_back_what_staging_held(tmp_path: Path) -> None:
    """The run was cancelled after its swap: production holds the release, staging what was
    there before (here the first release ever, so there is no /healthz to verify)."""
    azure = Azure(tmp_path, world(production="ccc333", staging=NO_RELEASE))
    result = release_cli(tmp_path, "recover", "--version", "ccc333", "--wait-seconds", "0")
    assert result.returncode == 3, result.stdout + result.stderr
    assert azure.commands().count("functionapp deployment slot swap") == 1
    slots = azure.world()["app"]["slots"]
    assert slots["production"]["settings"]["APP_VERSION"] == NO_RELEASE
    assert slots["staging"]["settings"]["APP_VERSION"] == "ccc333"
