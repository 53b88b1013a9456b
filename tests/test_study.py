"""Studies: the built-in assignment, TOML study files with clear errors, and `cnnkit run --all` end to end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli_subprocess, real_data_dir

from cnnkit.errors import UsageError
from cnnkit.plugins import create_plugin_manager
from cnnkit.studies.study import load_study_file, manifest

ASSIGNMENT_DIRS = [
    "mnist-pooling_cnn-adadelta-seed0",
    "mnist-strided_cnn-adadelta-seed0",
    "mnist-pooling_cnn-adam-seed0",
    "mnist-strided_cnn-adam-seed0",
    "cifar10-pooling_cnn-adam-seed0",
    "cifar10-pooling_cnn-adagrad-seed0",
    "cifar10-pooling_cnn-adadelta-seed0",
]


def test_assignment_study_has_the_seven_runs() -> None:
    study = create_plugin_manager()[1].studies.get("assignment")
    planned = study.expand()
    assert [config.dir_name for config, _ in planned] == ASSIGNMENT_DIRS
    assert [config.epochs for config, _ in planned] == [10] * 4 + [30] * 3
    assert {(c.batch_size, c.val_split, c.preset) for c, _ in planned} == {(128, 0.2, "keras")}
    references = {c.dir_name: spec.reference["test_accuracy"] for c, spec in planned if spec.reference}
    assert references == {
        ASSIGNMENT_DIRS[0]: 0.8736,
        ASSIGNMENT_DIRS[1]: 0.8735,
        ASSIGNMENT_DIRS[4]: 0.6597,
        ASSIGNMENT_DIRS[5]: 0.4914,
        ASSIGNMENT_DIRS[6]: 0.3556,
    }
    overridden = study.expand(epochs=1, subset=2000, seeds=[0, 1])
    assert len(overridden) == 14 and {(c.epochs, c.subset) for c, _ in overridden} == {(1, 2000)}
    assert manifest(study, planned)["runs"][0]["reference"]["test_loss"] == 0.4901


GOOD = """
name = "mine"
description = "two nets, two seeds"
[defaults]
epochs = 3
seeds = [0, 1]

[[runs]]
dataset = "mnist"
architecture = "net_1"
optimizer = "adam"

[[runs]]
dataset = "mnist"
architecture = "net_2"
lr = 0.01
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_study_file_is_read_with_defaults(tmp_path: Path) -> None:
    study = load_study_file(write(tmp_path, GOOD))
    assert study.name == "mine" and len(study.runs) == 2
    assert study.runs[1].lr == 0.01 and study.runs[1].epochs == 3 and study.runs[0].seeds == (0, 1)
    assert len(study.expand()) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace('optimizer = "adam"', 'optimiser = "adam"'), "line 11: unknown key 'optimiser' in run 1"),
        (GOOD.replace("lr = 0.01", 'lr = "fast"'), "line 16: 'lr' in run 2 must be float, got str 'fast'"),
        (GOOD.replace("epochs = 3", "epochs = 3.5"), "line 5: 'epochs' in run 1 must be int"),
        (GOOD.replace("epochs = 3", "epochs = "), "TOML syntax error"),
        (GOOD.replace("seeds = [0, 1]", "seeds = []"), "'seeds' in run 1 must be a non-empty list"),
        ('name = "x"\n', "a study needs at least one [[runs]] table"),
        (GOOD.replace('architecture = "net_2"\n', ""), "line 13: run 2 has no 'architecture'"),
        ("colour = 1\n" + GOOD, "line 1: unknown key 'colour'"),
    ],
)
def test_malformed_study_files_name_the_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError) as error:
        load_study_file(write(tmp_path, text))
    assert message in str(error.value) and str(tmp_path / "study.toml") in str(error.value)


def test_bad_study_file_from_the_cli_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("lr = 0.01", 'lr = "fast"'))
    result = cli_subprocess("run", "--study", str(path), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2 and "'lr' in run 2 must be float" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


def test_unknown_names_in_a_study_are_refused_before_anything_runs(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('architecture = "net_2"', 'architecture = "net_9"'))
    result = cli_subprocess("run", "--study", str(path), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2 and "unknown architecture 'net_9'" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.realdata
def test_run_all_end_to_end_killed_between_runs_then_resumed(tmp_path: Path) -> None:
    data = real_data_dir("mnist.npz", "cifar10.npz")
    args = [
        sys.executable,
        "-m",
        "cnnkit.cli",
        "run",
        "--all",
        "--epochs",
        "1",
        "--subset",
        "2000",
        "--quiet",
        "--out",
        str(tmp_path),
        "--data-dir",
        str(data),
    ]
    study_dir = tmp_path / "assignment"
    first = study_dir / ASSIGNMENT_DIRS[0] / "result.json"
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline:
        assert process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = first.read_bytes()
    assert not (study_dir / "report").exists()

    result = subprocess.run(args, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    assert "already complete, skipped" in result.stderr and first.read_bytes() == finished_before
    for name in ASSIGNMENT_DIRS:
        outcome = json.loads((study_dir / name / "result.json").read_text())
        assert outcome["epochs"] == 1 and 0.0 <= outcome["test_accuracy"] <= 1.0
    assert json.loads((study_dir / "study.json").read_text())["name"] == "assignment"
    html = (study_dir / "report" / "report.html").read_text()
    assert "0.8736" in html or "87.36" in html
    assert (study_dir / "report" / "report.pdf").read_bytes().startswith(b"%PDF")

    spanish = cli_subprocess("report", str(study_dir), "--lang", "es", "--format", "html")
    assert spanish.returncode == 0, spanish.stderr
    assert "Resultados" in (study_dir / "report" / "report.html").read_text()
