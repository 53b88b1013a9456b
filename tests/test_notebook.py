"""examples/notebooks/assignment.ipynb: committed without outputs, and executed at CI's budget on the real data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import real_data_dir

NOTEBOOK = Path(__file__).parents[1] / "examples" / "notebooks" / "assignment.ipynb"
KERNEL = "cnnkit-test"


def test_the_committed_notebook_has_no_outputs() -> None:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    assert "CNNKIT_EPOCHS" in "".join(code[0]["source"]) and "CNNKIT_SUBSET" in "".join(code[0]["source"])


def _this_interpreter_as_kernel(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernelspec running this interpreter, first on JUPYTER_PATH: a user-wide 'python3' may be another Python."""
    spec = directory / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(directory))


def _outputs(notebook: Any) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


@pytest.mark.slow
@pytest.mark.realdata
def test_the_notebook_runs_the_assignment_and_shows_its_table_curves_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    real_data_dir("mnist.npz", "cifar10.npz")
    _this_interpreter_as_kernel(tmp_path / "jupyter", monkeypatch)
    monkeypatch.setenv("CNNKIT_EPOCHS", "1")
    monkeypatch.setenv("CNNKIT_SUBSET", "500")
    work = tmp_path / "work"
    work.mkdir()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=900, kernel_name=KERNEL, resources={"metadata": {"path": str(work)}}
    )
    try:
        client.execute()  # raises CellExecutionError, with the cell and its traceback, on an error
    finally:
        nbformat.write(notebook, tmp_path / "executed.ipynb")  # to look at when it fails

    outputs = _outputs(notebook)
    assert not [output for output in outputs if output.output_type == "error"]
    streams = "".join(output.text for output in outputs if output.output_type == "stream")
    assert "\r" not in streams  # per-epoch lines, never carriage-return frames
    assert streams.count("Epoch 1/1 - ") == 7
    for chatter in ("GPU available", "LOCAL_RANK", "Trainer.fit", "`Trainer", "Warning"):
        assert chatter not in streams
    rich = [output.data for output in outputs if output.output_type in ("execute_result", "display_data")]
    tables = [data["text/html"] for data in rich if "<table" in data.get("text/html", "")]
    assert tables, "no HTML table among the outputs"
    summary = tables[0]  # `study` shows its summary table: a row per configuration
    assert summary.count("<tr") == 1 + 7 and "<th>optimizer</th>" in summary and "<td>adagrad</td>" in summary
    assert any("image/png" in data for data in rich)  # the curves
    assert any("<iframe srcdoc=" in data.get("text/html", "") for data in rich)  # the report, embedded

    study_dir = work / "runs" / "assignment-epochs1-subset500"  # under a runs/ that .gitignore leaves out
    assert (study_dir / "report" / "report.html").is_file()
    assert len(list(study_dir.glob("*/result.json"))) == 7
