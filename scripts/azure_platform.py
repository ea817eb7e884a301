"""The release's Azure adapter: each platform operation as ``az`` CLI calls (scripts/release.py).

Configured from the environment (GitHub variables, outputs of ``azd provision``):
AZURE_RESOURCE_GROUP, AZURE_FUNCTIONAPP_NAME, AZURE_POSTGRES_SERVER, AZURE_POSTGRES_DATABASE,
AZURE_DEPLOY_PRINCIPAL_NAME (the release's PostgreSQL user) and AZURE_APP_IDENTITY_NAME (the
user-assigned identity both slots run as, whose name is the app's database role). ``az`` must be
signed in (OIDC in the workflows). No app setting value and no token is ever printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.release import PlatformError, Slot

ROOT = Path(__file__).resolve().parent.parent
SQL = ROOT / "infra" / "db"
CONFIG = {
    "resource_group": "AZURE_RESOURCE_GROUP",
    "app_name": "AZURE_FUNCTIONAPP_NAME",
    "postgres_server": "AZURE_POSTGRES_SERVER",
    "database": "AZURE_POSTGRES_DATABASE",
    "deploy_user": "AZURE_DEPLOY_PRINCIPAL_NAME",
    "identity_name": "AZURE_APP_IDENTITY_NAME",
}
SWAP_TIMEOUT_SECONDS = 1800
DEPLOY_TIMEOUT_SECONDS = 900
COMMAND_TIMEOUT_SECONDS = 300
FIREWALL_DELETE_ATTEMPTS = 3
IP_SERVICE = "https://api.ipify.org"
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class ConfigurationError(Exception):
    """A variable the adapter needs is missing."""


@dataclass(frozen=True)
class AzureApp:
    resource_group: str
    app_name: str
    postgres_server: str
    database: str
    deploy_user: str
    identity_name: str


def az(*args: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> Any:
    """Run ``az ARGS --output json``; its parsed answer (None when it prints nothing)."""
    executable = shutil.which("az")
    if executable is None:
        raise PlatformError("the Azure CLI (az) is not installed")
    command = [executable, *args, "--output", "json", "--only-show-errors"]
    try:
        result = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise PlatformError(f"az {' '.join(args[:4])}: no answer in {timeout:g} s") from None
    if result.returncode != 0:
        problem = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        raise PlatformError(f"az {' '.join(args[:4])}: {problem[0][:300]}")
    return json.loads(result.stdout) if result.stdout.strip() else None


class AzurePlatform:
    def __init__(
        self, app: AzureApp, environ: Mapping[str, str], ip_service: str = IP_SERVICE
    ) -> None:
        self.app = app
        self.environ = environ
        self.ip_service = ip_service
        self._hosts: dict[Slot, str] = {}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AzurePlatform:
        missing = [name for name in CONFIG.values() if not environ.get(name, "").strip()]
        if missing:
            raise ConfigurationError(f"set {', '.join(missing)}")
        values = {field: environ[name].strip() for field, name in CONFIG.items()}
        return cls(AzureApp(**values), environ)

    def _app(self, slot: Slot) -> list[str]:
        target = ["--resource-group", self.app.resource_group, "--name", self.app.app_name]
        return [*target, "--slot", "staging"] if slot == "staging" else target

    def app_settings(self, slot: Slot) -> dict[str, str]:
        listed = az("functionapp", "config", "appsettings", "list", *self._app(slot))
        if not isinstance(listed, list):
            raise PlatformError("az functionapp config appsettings list: not a list")
        return {entry["name"]: entry.get("value") or "" for entry in listed}

    def set_app_settings(self, slot: Slot, values: Mapping[str, str]) -> None:
        pairs = [f"{name}={value}" for name, value in values.items()]
        az("functionapp", "config", "appsettings", "set", *self._app(slot), "--settings", *pairs)

    def deploy_package(self, slot: Slot, package: Path) -> None:
        az(
            "functionapp",
            "deployment",
            "source",
            "config-zip",
            *self._app(slot),
            "--src",
            str(package),
            "--build-remote",
            "false",
            "--timeout",
            str(DEPLOY_TIMEOUT_SECONDS),
            timeout=DEPLOY_TIMEOUT_SECONDS + 60,
        )

    def url(self, slot: Slot) -> str:
        if slot not in self._hosts:
            shown = az("functionapp", "show", *self._app(slot))
            self._hosts[slot] = shown["defaultHostName"]
        return f"https://{self._hosts[slot]}"

    def swap(self) -> None:
        az(
            "functionapp",
            "deployment",
            "slot",
            "swap",
            "--resource-group",
            self.app.resource_group,
            "--name",
            self.app.app_name,
            "--slot",
            "staging",
            "--target-slot",
            "production",
            timeout=SWAP_TIMEOUT_SECONDS,
        )

    def migrate(self) -> None:
        """Behind a firewall rule for this runner only, closed whatever happens: the database and
        the app's role (once), Alembic as the release's Entra identity, then the app's grants."""
        server = ["--resource-group", self.app.resource_group, "--name", self.app.postgres_server]
        rule = f"release-{os.getpid()}-{int(time.time())}"
        address = runner_address(self.ip_service)
        az(
            "postgres",
            "flexible-server",
            "firewall-rule",
            "create",
            *server,
            "--rule-name",
            rule,
            "--start-ip-address",
            address,
            "--end-ip-address",
            address,
        )
        try:
            self._migrate(server)
        finally:
            self._delete_firewall_rule(server, rule)

    def _migrate(self, server: list[str]) -> None:
        host = az("postgres", "flexible-server", "show", *server)["fullyQualifiedDomainName"]
        identity = az(
            "identity",
            "show",
            "--resource-group",
            self.app.resource_group,
            "--name",
            self.app.identity_name,
        )
        token = az("account", "get-access-token", "--resource-type", "oss-rdbms")["accessToken"]
        libpq = {"PGHOST": host, "PGSSLMODE": "require", "PGUSER": self.app.deploy_user}
        psql_env = {**os.environ, **libpq, "PGPASSWORD": token}
        self._psql(
            psql_env,
            "postgres",
            "bootstrap-roles.sql",
            dbname=self.app.database,
            app_role=self.app.identity_name,
            app_oid=identity["principalId"],
        )
        user = urllib.parse.quote(self.app.deploy_user, safe="")
        app_env = {
            **os.environ,
            # Port 5432, not PgBouncer: DDL and Alembic's locking want a session of their own.
            "DATABASE_URL": f"postgresql+psycopg://{user}@{host}:5432/{self.app.database}"
            "?sslmode=require",
            "DB_ENTRA_AUTH": "true",
            # The runner has no managed identity: the token of its az login.
            "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
        }
        commands = [["migrate"]]
        if self.environ.get("FIRST_SUPERUSER", "").strip():
            commands.append(["create-superuser"])  # only the release's identity may write
        for command in commands:
            run(
                [sys.executable, str(ROOT / "manage.py"), *command],
                app_env,
                f"manage.py {command[0]}",
            )
        self._psql(psql_env, self.app.database, "grant-app-access.sql")

    def _psql(self, env: dict[str, str], database: str, script: str, **variables: str) -> None:
        command = ["psql", "-X", "-q", "-d", database, "-v", "ON_ERROR_STOP=1"]
        for name, value in variables.items():
            command += ["-v", f"{name}={value}"]
        run([*command, "-f", str(SQL / script)], env, f"psql {script}")

    def _delete_firewall_rule(self, server: list[str], rule: str) -> None:
        for attempt in range(1, FIREWALL_DELETE_ATTEMPTS + 1):
            try:
                az(
                    "postgres",
                    "flexible-server",
                    "firewall-rule",
                    "delete",
                    *server,
                    "--rule-name",
                    rule,
                    "--yes",
                )
                return
            except PlatformError as exc:
                print(f"firewall rule {rule}: delete attempt {attempt} failed: {exc}")
                if attempt < FIREWALL_DELETE_ATTEMPTS:
                    time.sleep(15)
        raise PlatformError(f"firewall rule {rule} is still open: delete it by hand")


def run(command: Sequence[str], env: Mapping[str, str], what: str) -> None:
    """``command`` from the checkout, its output shown in the job's log."""
    result = subprocess.run(  # noqa: S603
        list(command), env=dict(env), cwd=ROOT, timeout=COMMAND_TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        raise PlatformError(f"{what} failed (exit {result.returncode})")


def runner_address(service: str) -> str:
    """This runner's public IPv4 address, for the temporary firewall rule."""
    try:
        with urllib.request.urlopen(service, timeout=10) as response:  # noqa: S310
            address: str = response.read(64).decode().strip()
    except OSError as exc:
        raise PlatformError(f"cannot learn the runner's address from {service}: {exc}") from None
    if not _IPV4.match(address):
        raise PlatformError(f"{service} answered {address!r}, not an IPv4 address")
    return address
