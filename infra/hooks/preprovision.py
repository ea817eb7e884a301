#!/usr/bin/env python3
"""azd preprovision hook: read the existing deployment before generating anything.

The values main.parameters.json needs and azd cannot supply: ``SECRET_KEY``, ``JWT_SECRET_KEY``
(provisioning writes them to Key Vault, so a new value signs every user out) and
``FUNCTION_APP_EXISTS`` (whether Bicep must read back the settings that travel with swaps,
APP_VERSION and WEBSITE_CONTENTSHARE, instead of resetting them).

The deployment is found in Azure, not in ``.azure/`` (a second operator, or CI, has a fresh one):
the resource group tagged ``azd-env-name=<AZURE_ENV_NAME>``.

* No such group: a truly new environment. Secrets are generated (or kept from the azd
  environment), and the app does not exist.
* The group exists: its Key Vault and Function App are looked up in it. The secrets are read from
  the vault, never generated; the app exists if it is there. Only a secret the group never
  stored (no vault, or no such secret in it: a first provision that stopped early) may be
  generated, since nothing was ever signed with it.
* Fails closed, setting nothing, when az is missing or signed out, or the group exists but its
  resources or its vault's secrets cannot be read.

Values go into the environment with ``azd env set``; no secret is ever printed. Needs Python
3.9+ and the Azure CLI (``az``), signed in.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from typing import Any

GENERATED_SECRETS = {"SECRET_KEY": "SECRET-KEY", "JWT_SECRET_KEY": "JWT-SECRET-KEY"}
MIN_SECRET_LENGTH = 32
VAULT = "Microsoft.KeyVault/vaults"
SITE = "Microsoft.Web/sites"


class Closed(Exception):
    """The deployment cannot be read: nothing is set, provisioning stops."""


def az(*args: str) -> Any:
    if shutil.which("az") is None:
        raise Closed("the Azure CLI (az) is not installed: it is needed to find the deployment")
    result = subprocess.run(  # noqa: S603
        ["az", *args, "--output", "json", "--only-show-errors"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        problem = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        raise Closed(f"az {' '.join(args[:3])} failed: {problem[:300]}")
    return json.loads(result.stdout) if result.stdout.strip() else None


def azd_env_set(name: str, value: str) -> None:
    result = subprocess.run(  # noqa: S603
        ["azd", "env", "set", name, value],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"azd env set {name} failed: {result.stderr.strip()}")


def resource_group(environment: str) -> str | None:
    groups = az("group", "list", "--tag", f"azd-env-name={environment}") or []
    names = [group["name"] for group in groups]
    if len(names) > 1:
        raise Closed(f"several resource groups are tagged azd-env-name={environment}: {names}")
    return names[0] if names else None


def vault_secret(vault: str, name: str) -> str | None:
    """The secret's value; None when the vault has no such secret (nothing was signed with it)."""
    try:
        shown = az("keyvault", "secret", "show", "--vault-name", vault, "--name", name)
    except Closed as exc:
        if "SecretNotFound" in str(exc):
            return None
        raise
    value = str((shown or {}).get("value", ""))
    if len(value) < MIN_SECRET_LENGTH:
        raise Closed(f"{vault}/{name} is shorter than {MIN_SECRET_LENGTH} characters")
    return value


def plan(env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The values to set, and a line per decision (no secret in them)."""
    environment = env.get("AZURE_ENV_NAME", "").strip()
    if not environment:
        raise Closed("AZURE_ENV_NAME is not set (run this hook through azd)")
    group = resource_group(environment)
    values: dict[str, str] = {}
    notes: list[str] = []
    if group is None:
        notes.append(f"no resource group tagged azd-env-name={environment}: a new environment")
        vault, app_exists = None, False
    else:
        resources = az("resource", "list", "--resource-group", group) or []
        vault = next((r["name"] for r in resources if r["type"] == VAULT), None)
        app_exists = any(r["type"] == SITE for r in resources)
        notes.append(
            f"{group}: vault {vault or 'none'}, function app {'found' if app_exists else 'none'}"
        )
    for variable, secret_name in GENERATED_SECRETS.items():
        stored = vault_secret(vault, secret_name) if vault is not None else None
        if stored is not None:
            values[variable] = stored
            notes.append(f"{variable}: read from Key Vault {vault}")
        elif len(env.get(variable, "")) >= MIN_SECRET_LENGTH:
            notes.append(f"{variable}: kept from the azd environment")
        else:
            values[variable] = secrets.token_urlsafe(48)
            notes.append(f"{variable}: generated")
    values["FUNCTION_APP_EXISTS"] = "true" if app_exists else "false"
    notes.append(f"FUNCTION_APP_EXISTS: {values['FUNCTION_APP_EXISTS']}")
    return values, notes


def main() -> int:
    try:
        values, notes = plan(dict(os.environ))
    except Closed as exc:
        print(f"preprovision: {exc}. Nothing was changed.", file=sys.stderr)
        return 1
    for name, value in values.items():
        azd_env_set(name, value)
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
