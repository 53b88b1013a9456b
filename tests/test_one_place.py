"""One concept, one place: a run setting and the run files' names are spelled in few modules of cnnkit/.

The modules' syntax trees are walked: a name counts where it is an identifier (a name, attribute, parameter,
keyword argument, function or class) or inside a string, comments and docstrings aside.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cnnkit"
SETTINGS = ("weight_decay", "dropout", "augment", "early_stopping", "lr_schedule", "label_smoothing")
RUN_FILES = ("result.json", "config.json", "metrics.csv", "predictions.npz")


def _docstrings(tree: ast.AST) -> set[int]:
    owners = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, owners)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def spelled(path: Path) -> list[str]:
    """Every identifier and string of a module (docstrings left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = _docstrings(tree)
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            texts.append(node.id)
        elif isinstance(node, ast.Attribute):
            texts.append(node.attr)
        elif isinstance(node, (ast.arg, ast.keyword)) and node.arg:
            texts.append(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            texts.append(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            texts.append(node.value)
    return texts


@pytest.fixture(scope="module")
def modules() -> dict[str, list[str]]:
    return {path.relative_to(PACKAGE).as_posix(): spelled(path) for path in sorted(PACKAGE.rglob("*.py"))}


def files_naming(modules: dict[str, list[str]], pattern: re.Pattern[str]) -> list[str]:
    return [name for name, texts in modules.items() if any(pattern.search(text) for text in texts)]


@pytest.mark.parametrize("setting", SETTINGS)
def test_a_setting_is_named_in_at_most_three_modules(modules: dict[str, list[str]], setting: str) -> None:
    word = re.compile(rf"(?<![A-Za-z]){setting}(?![A-Za-z])")  # `augment_training_set` counts, `augmentations` not
    naming = files_naming(modules, word)
    assert len(naming) <= 3, naming
    assert "training/config.py" in naming  # the schema declares it


def test_the_run_files_are_named_in_at_most_two_modules(modules: dict[str, list[str]]) -> None:
    naming = files_naming(modules, re.compile("|".join(re.escape(name) for name in RUN_FILES)))
    assert len(naming) <= 2, naming
    assert "results/files.py" in naming


def test_the_counter_sees_identifiers_and_strings_but_not_docstrings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""dropout in a docstring"""\n# dropout in a comment\nx = f(weight_decay=1)\ny = "--augment"\n')
    texts = spelled(module)
    assert "weight_decay" in texts and "--augment" in texts
    assert not any("dropout" in text for text in texts)
