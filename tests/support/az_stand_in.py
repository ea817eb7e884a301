"""An ``az`` stand-in: a real program on PATH that answers from a JSON world and logs its calls.

``install(bin_dir, world, log)`` writes ``bin_dir/az`` (a shell script running this file), so
the code under test runs ``az`` exactly as in production. The world holds what the commands
read and change: resource groups, resources, vault secrets, the Function App's slots with their
settings and packages, the PostgreSQL server and its firewall rules, the app's identity.
``failing`` maps a command prefix ("keyvault secret show") to the error az prints.
A swap exchanges the slots' packages and non-sticky settings, as App Service does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

SLOTS = ("production", "staging")


def install(bin_dir: Path, world: dict[str, Any], log: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    state = bin_dir / "az-world.json"
    state.write_text(json.dumps(world))
    script = bin_dir / "az"
    script.write_text(
        f'#!/bin/sh\nAZ_WORLD="{state}" AZ_LOG="{log}" exec "{sys.executable}" "{__file__}" "$@"\n'
    )
    script.chmod(0o755)
    return state


def calls(log: Path) -> list[list[str]]:
    """Every logged call's arguments, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def parse(argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    words: list[str] = []
    options: dict[str, list[str]] = {}
    current: str | None = None
    for arg in argv:
        if arg.startswith("-"):
            current = arg.lstrip("-")
            options.setdefault(current, [])
        elif current is None:
            words.append(arg)
        else:
            options[current].append(arg)
    return words, options


def answer(world: dict[str, Any], words: list[str], options: dict[str, list[str]]) -> Any:
    def option(*names: str) -> str:
        for name in names:
            if options.get(name):
                return options[name][0]
        raise SystemExit(f"stand-in: missing --{names[0]}")

    command = " ".join(words)
    app = world.get("app", {})
    slot = "staging" if options.get("slot") == ["staging"] else "production"
    if command == "group list":
        key, _, value = option("tag").partition("=")
        return [
            {"name": name, "tags": group["tags"]}
            for name, group in world.get("groups", {}).items()
            if group["tags"].get(key) == value
        ]
    if command == "resource list":
        return world["groups"][option("resource-group", "g")]["resources"]
    if command == "keyvault secret show":
        secrets = world.get("vaults", {}).get(option("vault-name"), {})
        name = option("name", "n")
        if name not in secrets:
            raise LookupError(
                f"ERROR: (SecretNotFound) A secret with (name/id) {name} was not found"
            )
        return {"name": name, "value": secrets[name]}
    if command == "functionapp config appsettings list":
        sticky = set(app["sticky"])
        settings = app["slots"][slot]["settings"]
        return [
            {"name": name, "value": value, "slotSetting": name in sticky}
            for name, value in settings.items()
        ]
    if command == "functionapp config appsettings set":
        for pair in options["settings"]:
            name, _, value = pair.partition("=")
            app["slots"][slot]["settings"][name] = value
        return None
    if command == "functionapp show":
        return {"defaultHostName": app["slots"][slot]["host"]}
    if command == "functionapp deployment source config-zip":
        app["slots"][slot]["package"] = option("src")
        return None
    if command == "functionapp deployment slot swap":
        production, staging = app["slots"]["production"], app["slots"]["staging"]
        production["package"], staging["package"] = staging["package"], production["package"]
        for name in set(production["settings"]) | set(staging["settings"]):
            if name not in app["sticky"]:
                a, b = production["settings"].pop(name, None), staging["settings"].pop(name, None)
                if b is not None:
                    production["settings"][name] = b
                if a is not None:
                    staging["settings"][name] = a
        return None
    if command == "postgres flexible-server show":
        return {"fullyQualifiedDomainName": world["postgres"]["host"]}
    if command == "postgres flexible-server firewall-rule create":
        world["postgres"]["rules"].append(option("rule-name"))
        return None
    if command == "postgres flexible-server firewall-rule delete":
        world["postgres"]["rules"].remove(option("rule-name"))
        return None
    if command == "identity show":
        return world["identity"]
    if command == "account get-access-token":
        expires = int(time.time()) + 3600
        return {
            "accessToken": world["token"],
            "expiresOn": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.localtime(expires)),
            "expires_on": expires,
            "tokenType": "Bearer",
        }
    raise SystemExit(f"stand-in: no such command: az {command}")


def main(argv: list[str]) -> int:
    state = Path(os.environ["AZ_WORLD"])
    with open(os.environ["AZ_LOG"], "a") as log:
        log.write(json.dumps(argv) + "\n")
    world = json.loads(state.read_text())
    words, options = parse(argv)
    for prefix, error in world.get("failing", {}).items():
        if " ".join(words).startswith(prefix):
            print(error, file=sys.stderr)
            return 1
    try:
        result = answer(world, words, options)
    except LookupError as exc:
        print(exc.args[0], file=sys.stderr)
        return 3
    state.write_text(json.dumps(world))
    if result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
