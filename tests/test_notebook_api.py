"""The Python API in a notebook (issue 27): progress on stdout in a Jupyter kernel, markers on single-epoch curves,
results under a runs/ that git ignores, and a `notebook` extra that installs what the notebook needs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "examples" / "notebooks" / "assignment.ipynb"


class KernelStream(io.StringIO):
    """Stands for ipykernel's OutStream, the stderr of a Jupyter kernel."""


KernelStream.__module__ = "ipykernel.iostream"


def test_progress_goes_to_stdout_in_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnkit.console.progress_bar import EpochProgress
    from cnnkit.console.streams import progress_stream

    assert progress_stream() is sys.stderr
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", KernelStream())
    assert progress_stream() is stdout and EpochProgress().stream is stdout


def test_a_single_epoch_is_plotted_as_points() -> None:
    pytest.importorskip("matplotlib")
    from cnnkit.api.curves import plot_curves

    settings = {"dataset": "mnist", "architecture": "pooling_cnn", "optimizer": "adam", "seed": 0}
    history = {"train_loss": [0.5], "train_accuracy": [0.8], "val_loss": [0.4], "val_accuracy": [0.85]}
    figure = plot_curves([(settings, history)])
    lines = [line for ax in figure.axes for line in ax.get_lines()]
    assert len(lines) == 4 and all(line.get_marker() == "o" for line in lines)
    history = {key: [*values, values[0]] for key, values in history.items()}
    lines = [line for ax in plot_curves([(settings, history)]).axes for line in ax.get_lines()]
    assert all(line.get_marker() in ("None", None, "") for line in lines)  # curves of two epochs or more: lines


def test_the_notebook_writes_under_a_runs_folder_that_git_ignores() -> None:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    assert 'OUT = "runs"' in "".join(cells[1]["source"])
    shortened = "examples/notebooks/runs/assignment-epochs1-subset500/mnist-pooling_cnn-adam-seed0/result.json"
    ignored = subprocess.run(["git", "check-ignore", "-q", shortened], cwd=ROOT, check=False)
    assert ignored.returncode == 0, f"{shortened} is not ignored by git"


def test_the_notebook_extra_installs_jupyter_nbconvert_and_a_kernel() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {requirement.split(">")[0].split("=")[0].strip() for requirement in extras["notebook"]}
    assert {"jupyter", "nbconvert", "ipykernel"} <= names
