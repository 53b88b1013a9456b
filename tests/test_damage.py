"""Damaged run files and a full disk: recovered where something sound is left, else one line; never a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import cli, write_mnist_npz

from cnnkit.cli import main

RUN = "mnist-lenet5-adam-seed0"
ARGS = ("run", "mnist", "lenet", "--epochs", "2", "--subset", "1200", "--quiet")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch run (OUT directory) on synthetic data, copied by each test before it damages it."""
    pytest.importorskip("cnnkit_fashion", reason="the run uses the example plugin's lenet (cheap)")
    root = tmp_path_factory.mktemp("damage")
    write_mnist_npz(root)
    assert main([*ARGS, "--out", str(root / "runs"), "--data-dir", str(root)]) == 0
    return root


@pytest.fixture
def copy(trained: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained / "runs", tmp_path / "runs")
    return tmp_path / "runs" / "single" / RUN


def rerun(trained: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    return cli(capsys, *ARGS, "--out", str(run_dir.parent.parent), "--data-dir", str(trained))


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def truncate(path: Path, keep: int = 1000) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_a_cut_result_json_means_unfinished_and_the_run_is_completed(
    trained: Path, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = result(copy)
    truncate(copy / "result.json", 200)
    code, _, err = rerun(trained, copy, capsys)
    assert code == 0, err
    assert f"{copy / 'result.json'} is damaged (not valid JSON" in err
    assert f"{RUN} counts as unfinished and is trained to its end again" in err
    assert "Traceback" not in err and "internal error" not in err
    assert result(copy)["test_accuracy"] == original["test_accuracy"]  # resumed from last.ckpt at its last epoch
    assert result(copy)["history"] == original["history"]


def test_a_cut_last_checkpoint_resumes_from_best(trained: Path, copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (copy / "result.json").unlink()
    truncate(copy / "checkpoints" / "last.ckpt")
    code, _, err = rerun(trained, copy, capsys)
    assert code == 0, err
    assert f"{copy / 'checkpoints' / 'last.ckpt'} is damaged (" in err
    assert f"{RUN} resumes from best.ckpt instead" in err
    assert len(result(copy)["history"]["val_loss"]) == 2


def test_both_checkpoints_cut_start_the_run_over(trained: Path, copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = result(copy)
    (copy / "result.json").unlink()
    for name in ("last.ckpt", "best.ckpt"):
        truncate(copy / "checkpoints" / name)
    code, _, err = rerun(trained, copy, capsys)
    assert code == 0, err
    assert f"checkpoints of {RUN} are unusable: last.ckpt (" in err and "; the run starts over" in err
    assert result(copy)["history"] == original["history"]  # started over: the same numbers (CPU, deterministic)


def test_temp_files_of_killed_writers_are_removed_by_the_next_run(
    trained: Path, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (copy / "result.json").unlink()
    left = [copy / "checkpoints" / ".best.ckpt.x1y2z3.tmp", copy / ".metrics.csv.abc123.tmp"]
    for path in left:
        path.write_bytes(b"half written")
    code, _, err = rerun(trained, copy, capsys)
    assert code == 0, err
    assert f"removed 2 temp file(s) a killed process left in {copy}" in err
    assert not any(path.exists() for path in left)


def test_a_finished_run_is_never_changed(trained: Path, copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    (copy / "checkpoints" / "last.ckpt").write_bytes(b"garbage")  # damaged, but the run is complete
    before[copy / "checkpoints" / "last.ckpt"] = b"garbage"
    code, out, _ = rerun(trained, copy, capsys)
    assert code == 0 and "already complete, skipped" in out
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


def test_a_damaged_config_json_names_the_file_and_what_to_do(
    trained: Path, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (copy / "result.json").unlink()
    truncate(copy / "config.json", 50)
    code, _, err = rerun(trained, copy, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"cnnkit: error: {copy / 'config.json'} is unreadable (" in err
    assert err.strip().endswith("--fresh starts this run over (deleting its checkpoints)")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs: too small for one checkpoint (about 19.5 MB with Adam's state)."""
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_says_so_and_where(trained: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("run", "mnist", "net_1", "--epochs", "1", "--subset", "600", "--quiet")  # its checkpoint: 19.5 MB
    code, _, err = cli(capsys, *args, "--out", str(small_disk), "--data-dir", str(trained))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    checkpoints = small_disk / "single" / "mnist-pooling_cnn-adam-seed0" / "checkpoints"
    assert f"cnnkit: error: the disk is full: cannot write {checkpoints}/" in err
    assert "free some space or choose another --out" in err
    assert not list(checkpoints.glob("*.tmp"))


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    from report_fixtures import make_study

    return make_study(tmp_path / "assignment")


def test_report_counts_a_damaged_result_json_as_an_unfinished_run(
    study_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = study_dir / "mnist-pooling_cnn-adam-seed0" / "result.json"
    truncate(damaged, 100)
    code, _, err = cli(capsys, "report", str(study_dir), "--format", "html")
    assert code == 0, err
    assert "mnist-pooling_cnn-adam-seed0" in (study_dir / "report" / "report.html").read_text()


@pytest.mark.parametrize(
    ("damaged", "advice"),
    [
        ("study.json", "running the study again (cnnkit run --study ...) rewrites it"),
        ("mnist-pooling_cnn-adam-seed0/predictions.npz", "delete it and the result.json beside it"),
    ],
)
def test_report_names_a_damaged_file_and_what_to_do(
    study_dir: Path, damaged: str, advice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    truncate(study_dir / damaged, 100)
    code, _, err = cli(capsys, "report", str(study_dir), "--format", "html")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(study_dir / damaged) in err and advice in err and "internal error" not in err
