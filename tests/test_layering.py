"""Layers: the security and data modules load no web types, and no shared module imports itself
back through others (imports inside functions count: they form cycles all the same)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_security_and_the_data_layer_load_no_web_types():
    script = (
        "import json, sys\n"
        "import shared.security, shared.entra, shared.crud, shared.reads, shared.throttle\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m in ('shared.http', 'shared.auth') or m.startswith('azure.functions'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def _imports_of_shared_modules() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "shared").glob("*.py"):
        name = f"shared.{path.stem}"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "shared":
                found |= {f"shared.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shared."):
                found.add(str(node.module))
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("shared.")}
        graph[name] = found - {name}
    return graph


def test_no_shared_module_imports_itself_back():
    graph = _imports_of_shared_modules()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported in graph:
                visit(imported, [*path, imported])

    for module in graph:
        visit(module, [module])
    assert cycles == []
