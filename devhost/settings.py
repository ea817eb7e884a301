"""App settings as ``func start`` sees them: the environment plus ``local.settings.json``."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from devhost.errors import DevhostError

logger = logging.getLogger("devhost")

_REFERENCE = re.compile(r"%([^%]+)%")


class UnresolvedSetting(LookupError):
    """A ``%NAME%`` binding expression whose setting is not defined."""


def apply_local_settings(path: Path, environ: MutableMapping[str, str] = os.environ) -> None:
    """Copy the file's ``Values`` into ``environ``, keeping variables that are already set.

    ``func start`` gives the real environment precedence, so a CI job or a shell export can
    override the developer's file without editing it.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        logger.info("%s not found; using the environment only", path)
        return
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DevhostError(f"{path} is not valid JSON: {exc}") from None
    values = document.get("Values", {}) if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise DevhostError(f"{path}: 'Values' must be a JSON object of settings")
    if document.get("IsEncrypted") is True:
        raise DevhostError(f"{path} is encrypted; decrypt it with 'func settings decrypt'")
    loaded = kept = 0
    for name, value in values.items():
        if isinstance(value, dict | list):
            raise DevhostError(f"{path}: the value of '{name}' must be a string")
        if value is None:
            continue
        if name in environ:
            kept += 1
            continue
        environ[name] = value if isinstance(value, str) else json.dumps(value)
        loaded += 1
    logger.info(
        "Loaded %d setting(s) from %s (%d already set in the environment and kept)",
        loaded,
        path,
        kept,
    )


def resolve_references(text: str, environ: Mapping[str, str] = os.environ) -> str:
    """Replace every ``%NAME%`` in a binding property with that app setting, as the host does."""

    def setting(found: re.Match[str]) -> str:
        value = environ.get(found.group(1))
        if value is None:
            raise UnresolvedSetting(f"'{found.group(0)}' does not resolve to a value.")
        return value

    return _REFERENCE.sub(setting, text)


def is_disabled(function_name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """``AzureWebJobs.<name>.Disabled`` (or its ``__`` form for Linux) set to true or 1."""
    wanted = {
        f"azurewebjobs.{function_name}.disabled".lower(),
        f"azurewebjobs__{function_name}__disabled".lower(),
    }
    return any(
        name.lower() in wanted and value.strip().lower() in {"true", "1"}
        for name, value in environ.items()
    )
