"""Built-in plugins are written exactly as a third party writes them: only `cnnkit`'s public names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cnnkit

PLUGIN_DIRS = [
    Path(__file__).parents[1] / "plugins",
    Path(__file__).parents[1] / "examples" / "cnnkit-fashion" / "cnnkit_fashion",
]
PLUGIN_FILES = sorted(path for directory in PLUGIN_DIRS for path in directory.glob("*.py"))


def _cnnkit_imports(path: Path) -> list[tuple[str, list[str]]]:
    imports = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cnnkit":
            imports.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            imports += [(alias.name, []) for alias in node.names if alias.name.split(".")[0] == "cnnkit"]
    return imports


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_plugins_import_only_public_names(path: Path) -> None:
    for module, names in _cnnkit_imports(path):
        assert module == "cnnkit", f"{path.name} imports from {module}; use `from cnnkit import ...`"
        assert set(names) <= set(cnnkit.__all__), f"{path.name} imports non-public {set(names) - set(cnnkit.__all__)}"
