"""The report's code knows no built-in plugin: what it says of the assignment is data of the plugins.

Every string constant of cnnkit/report/ is compared with the names (and aliases) of the built-in datasets,
architectures, optimizers and studies; the assignment's facts live in plugins/ (its `StudyNotes`, the
`ReaderInfo`s, the published references with their budgets).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cnnkit.plugins import create_plugin_manager

REPORT = Path(__file__).resolve().parent.parent / "cnnkit" / "report"


def builtin_names() -> set[str]:
    """Names and aliases of the plugins cnnkit itself ships (entry points of the cnnkit distribution)."""
    _, registries = create_plugin_manager()
    names = set()
    for kind in ("datasets", "architectures", "optimizers", "studies"):
        for entry in getattr(registries, kind):
            if entry.as_dict()["distribution"] == "cnnkit":
                names |= {entry.name, *entry.aliases}
    return names


def test_the_built_ins_are_known_to_this_test() -> None:
    assert {"mnist", "cifar10", "pooling_cnn", "net_2", "adadelta", "assignment", "adadelta-lr"} <= builtin_names()


@pytest.mark.parametrize("path", sorted(REPORT.rglob("*.py")), ids=lambda p: p.name)
def test_no_string_of_the_report_names_a_built_in(path: Path) -> None:
    names = builtin_names()
    strings = [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert [(line, s) for line, s in strings if s.strip().lower() in names] == []


@pytest.mark.parametrize("path", sorted(REPORT.rglob("*.py")), ids=lambda p: p.name)
def test_no_module_of_the_report_holds_words_of_its_own(path: Path) -> None:
    """The report's words live in templates/words.toml, the templates and the catalogs: only the loaders of the
    catalogs (catalog.py, localize.py) speak gettext; no other module marks or translates a message."""
    if path.name in ("catalog.py", "localize.py"):
        return
    names = {
        node.attr if isinstance(node, ast.Attribute) else node.id
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Attribute, ast.Name))
    }
    assert names.isdisjoint({"N_", "gettext", "ngettext", "pgettext", "npgettext"}), path.name
