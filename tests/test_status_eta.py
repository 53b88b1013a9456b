"""Status and ETA from what is on disk (issue 27): a clean Ctrl-C is "interrupted", not "died"; the time left counts
testing and a run stopped while testing; a copied study's resume command points at the copy; a resumed study knows
its ETA from the epochs on disk; the live line says when a run is testing."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import cli

from cnnkit.console.job_board import JobLine
from cnnkit.results.records import write_progress

CURVES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
ONE_EPOCH = "epoch,train_loss,train_accuracy,val_loss,val_accuracy\n1,0,0,0,0\n"


def demo_study(root: Path, command: str = "cnnkit run --study demo.toml") -> Path:
    """runs/demo: a finished run (50 s an epoch, 10 s of testing) and a run after its first of 2 epochs."""
    study = root / "runs" / "demo"
    runs = [{"dir": n, "dataset": "mnist", "architecture": "pooling_cnn", "epochs": 2, "val_split": 0.2} for n in "ab"]
    study.mkdir(parents=True)
    (study / "study.json").write_text(json.dumps({"name": "demo", "runs": runs, "command": command, "cwd": str(root)}))
    config = {"data": {"train": 48_000, "test": 10_000, "image_shape": [28, 28, 1]}}
    for name in "ab":
        (study / name).mkdir()
        (study / name / "config.json").write_text(json.dumps(config))
    (study / "a" / "metrics.csv").write_text(ONE_EPOCH + "2,0,0,0,0\n")
    result = {"dataset": "mnist", "architecture": "pooling_cnn", "test_accuracy": 0.99, "test_loss": 0.03,
              "best_epoch": 2, "history": {k: [0.1, 0.05] for k in CURVES}, "train_seconds": 90.0}  # fmt: skip
    (study / "a" / "result.json").write_text(json.dumps(result))
    write_progress(study / "a", "finished", [50.0, 50.0], test_seconds=10.0)
    (study / "b" / "metrics.csv").write_text(ONE_EPOCH)
    (study / "b" / ".lock").write_text(json.dumps({"host": "node7", "pid": 4242, "started": 0}))
    return study


def status_lines(study: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code, out, err = cli(capsys, "status", str(study))
    assert code == 0, err
    return out.splitlines()


def test_a_run_stopped_by_ctrl_c_is_interrupted_not_died(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    study = demo_study(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert "stopped after epoch 1/2: pid 4242 on host node7 died; resume with" in status_lines(study, capsys)[2]
    write_progress(study / "b", "interrupted", [50.0])
    line = status_lines(study, capsys)[2]
    assert line.split(maxsplit=2)[:2] == ["interrupted", "b"]
    assert "interrupted after epoch 1/2 (Ctrl-C, pid 4242 on host node7; checkpoints kept); resume with: " in line
    assert "died" not in line


def test_time_left_comes_from_the_measured_epochs_and_counts_testing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    study = demo_study(tmp_path)
    monkeypatch.chdir(tmp_path)
    write_progress(study / "b", "interrupted", [40.0])
    # b's epoch left at the measured pace (a's 100 s, b's 40 s: 46.7 s an epoch), then a's 10 s of testing
    assert status_lines(study, capsys)[-2] == "Time left: about 57s, testing included (from the measured epochs)"
    (study / "b" / "metrics.csv").write_text(ONE_EPOCH + "2,0,0,0,0\n")  # stopped while testing: testing left
    write_progress(study / "b", "testing", [40.0, 40.0])
    lines = status_lines(study, capsys)
    assert "stopped while testing: pid 4242 on host node7 died" in lines[2]
    assert lines[-2] == "Time left: about 10s, testing included (from the measured epochs)"


def test_a_copied_studys_resume_command_points_at_the_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    study = demo_study(tmp_path / "there", "cnnkit run --study demo.toml --epochs 2 --out runs")
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "backup" / "demo"
    shutil.copytree(study, copy)
    there = tmp_path / "there"
    assert (
        status_lines(study, capsys)[-1]
        == f"Resume with: cd {there} && cnnkit run --study demo.toml --epochs 2 --out runs"
    )
    assert status_lines(copy, capsys)[-1] == (
        f"Resume with: cd {there} && cnnkit run --study demo.toml --epochs 2 --out {tmp_path / 'backup'}"
    )
    shutil.rmtree(there)  # the copy on another machine: its recorded directory is not there
    assert status_lines(copy, capsys)[-1] == f"Resume with: cnnkit run --study demo.toml --epochs 2 --out {copy.parent}"


def test_a_resumed_study_knows_its_eta_from_the_epochs_on_disk(tmp_path: Path) -> None:
    from cnnkit.console.study_progress import StudyProgress
    from cnnkit.plugins import get_registries
    from cnnkit.training.config import RunConfig

    configs = [RunConfig("mnist", "pooling_cnn", epochs=3), RunConfig("mnist", "strided_cnn", epochs=3)]
    study = tmp_path / "study"
    write_progress(study / configs[0].dir_name, "interrupted", [30.0, 30.0])
    fresh = StudyProgress([(c, None) for c in configs], get_registries(), tmp_path / "elsewhere", stream=io.StringIO())
    assert fresh.eta() == "ETA after the first epoch"
    resumed = StudyProgress([(c, None) for c in configs], get_registries(), study, stream=io.StringIO())
    left = resumed.seconds_left()
    # one epoch of the first run, three of the second (same speed per image here), each run's testing estimated
    assert left is not None and 4 * 30.0 < left < 4 * 30.0 + 2 * 30.0, left
    resumed.begin(0)  # its header: the epochs behind it already count
    assert resumed.seconds_left() == left


def test_the_live_line_says_testing_with_the_test_passs_eta() -> None:
    now = time.monotonic()
    line = JobLine("mnist-pooling_cnn-adam-seed0", epoch=7, epochs=7, batch=20, batches=80, started=now - 10.0)
    assert "Epoch 7/7 [" in line.render(30, now)
    line.testing = True
    shown = line.render(30, now)
    assert shown.startswith("mnist-pooling_cnn-adam-seed0    testing [") and shown.endswith("20/80  ETA 30s")


def test_the_serial_bar_says_testing() -> None:
    from cnnkit.console.progress_bar import EpochProgress

    stream = io.StringIO()
    bar = EpochProgress(stream=stream, live=True)
    trainer = SimpleNamespace(num_test_batches=[40])
    bar.on_test_batch_end(trainer, None, None, None, 29)  # type: ignore[arg-type]
    bar.on_test_end(trainer, None)  # type: ignore[arg-type]
    assert "Testing [" in stream.getvalue() and "30/40" in stream.getvalue()
    assert stream.getvalue().endswith("\r\x1b[K")
