"""Modules imported on first attribute access, so indexing the app stays cheap.

Blueprints bind their heavy collaborators (SQLAlchemy models, pydantic schemas, security) with
``lazy_import`` at module level, and import them normally under ``TYPE_CHECKING`` so the type
checker sees the real modules. The first attribute access imports the module through the normal
import system, which is thread-safe (unlike ``importlib.util.LazyLoader`` on Python 3.11).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_import(name: str) -> Any:
    return _LazyModule(name)
