#!/usr/bin/env python3
"""azd preprovision hook: set the azd environment values that main.parameters.json reads and azd
cannot supply by itself.

* ``SECRET_KEY`` and ``JWT_SECRET_KEY``: generated once, then kept. Provisioning writes them to Key
  Vault, so a new value on every ``azd provision`` would invalidate every token already issued. An
  existing value wins: the azd environment first, then the vault of an earlier provision (another
  machine, a lost ``.azure`` folder), and only then 48 fresh random bytes.
* ``FUNCTION_APP_EXISTS``: whether the Function App already exists, so the Bicep keeps the settings
  that travel with slot swaps (APP_VERSION, WEBSITE_CONTENTSHARE) instead of resetting them.

Values go into the environment with ``azd env set``; no secret is ever printed. Needs Python 3.9+;
the Azure CLI (``az``) is optional and only used to look things up.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys

GENERATED_SECRETS = {"SECRET_KEY": "SECRET-KEY", "JWT_SECRET_KEY": "JWT-SECRET-KEY"}
MIN_SECRET_LENGTH = 32


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603


def azd_env_set(name: str, value: str) -> None:
    result = run("azd", "env", "set", name, value)
    if result.returncode != 0:
        raise SystemExit(f"azd env set {name} failed: {result.stderr.strip()}")


def az_available() -> bool:
    return shutil.which("az") is not None


def secret_from_vault(vault: str, secret_name: str) -> str | None:
    if not vault or not az_available():
        return None
    query = f"keyvault secret show --vault-name {vault} --name {secret_name} --query value -o tsv"
    result = run("az", *query.split())
    value = result.stdout.strip()
    return value if result.returncode == 0 and len(value) >= MIN_SECRET_LENGTH else None


def ensure_secrets(env: dict[str, str]) -> None:
    vault = env.get("AZURE_KEY_VAULT_NAME", "")
    for variable, secret_name in GENERATED_SECRETS.items():
        if len(env.get(variable, "")) >= MIN_SECRET_LENGTH:
            print(f"{variable}: kept from the azd environment")
            continue
        value = secret_from_vault(vault, secret_name)
        source = f"read back from Key Vault {vault}"
        if value is None:
            value = secrets.token_urlsafe(48)
            source = "generated"
        azd_env_set(variable, value)
        print(f"{variable}: {source}")


def function_app_exists(env: dict[str, str]) -> bool:
    """True when an earlier provision created the app and it has not been deleted since.

    When in doubt the answer is True: wrongly assuming the app exists fails the deployment with a
    clear error, while wrongly assuming it does not would silently reset APP_VERSION and exchange
    the slots' content shares.
    """
    name = env.get("AZURE_FUNCTIONAPP_NAME", "")
    group = env.get("AZURE_RESOURCE_GROUP", "")
    if not name or not group:
        return False
    if not az_available():
        return True
    query = f"functionapp show --name {name} --resource-group {group} --query id -o tsv"
    result = run("az", *query.split())
    if result.returncode == 0:
        return bool(result.stdout.strip())
    not_found = ("ResourceNotFound", "ResourceGroupNotFound", "could not be found")
    if any(marker in result.stderr for marker in not_found):
        return False
    print(f"warning: could not check {name} ({result.stderr.strip()[:200]}); assuming it exists")
    return True


def main() -> int:
    env = dict(os.environ)
    ensure_secrets(env)
    exists = function_app_exists(env)
    azd_env_set("FUNCTION_APP_EXISTS", "true" if exists else "false")
    print(f"FUNCTION_APP_EXISTS: {'true' if exists else 'false'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
