"""What a user sees of a study: [k/N] headers, the study's ETA, the closing table, `cnnkit status`, data checks."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import cli, cli_subprocess, real_data_dir

from cnnkit.console.eta import Speeds, Work, eta_text, format_duration
from cnnkit.console.study_progress import summary_table
from cnnkit.storage.locks import hold_run_lock

STUDY = """
name = "watch"
[defaults]
dataset = "mnist"
epochs = {epochs}
[[runs]]
architecture = "net_1"
[[runs]]
architecture = "net_2"
[[runs]]
{third}
"""
RUN_DIRS = ["mnist-pooling_cnn-adam-seed0", "mnist-strided_cnn-adam-seed0", "mnist-strided_cnn-adagrad-seed0"]


def study_file(tmp_path: Path, epochs: int = 1, third: str = 'architecture = "net_2"\noptimizer = "adagrad"') -> Path:
    path = tmp_path / "watch.toml"
    path.write_text(STUDY.format(epochs=epochs, third=third))
    return path


def test_eta_comes_from_measured_speed_and_scales_to_larger_images() -> None:
    speeds = Speeds()
    mnist = Work(("mnist", "pooling_cnn"), images=48_000, pixels=28 * 28, epochs=10)
    cifar = Work(("cifar10", "pooling_cnn"), images=40_000, pixels=32 * 32, epochs=30)
    assert eta_text(speeds.seconds_left([mnist])) == "ETA after the first epoch"
    speeds.add(("mnist", "pooling_cnn"), images=48_000, pixels=28 * 28, seconds=60.0)  # one epoch in a minute
    assert eta_text(speeds.seconds_left([mnist])) == "ETA 10m 00s"
    assert speeds.seconds_left([cifar]) == pytest.approx(30 * 60.0 * (40_000 * 1024) / (48_000 * 784))
    assert [format_duration(s) for s in (4.4, 65, 3600 * 2 + 7 * 60)] == ["4s", "1m 05s", "2h 07m"]


def _outcome(name: str, acc: float, skipped: bool = False, **settings: object) -> SimpleNamespace:
    result = {"dataset": "mnist", "architecture": name.split("-")[1], "optimizer": "adam", "test_accuracy": acc,
              "test_loss": 1 - acc, "best_epoch": 9, "best_test_accuracy": acc + 0.001, "epochs": 10,
              "train_seconds": 552.0, **settings}  # fmt: skip
    return SimpleNamespace(run_dir=Path("runs/s") / name, result=result, skipped=skipped)


def test_summary_table_one_row_per_configuration_with_mean_sd_and_n() -> None:
    outcomes = [
        _outcome("mnist-pooling_cnn-adam-seed0", 0.98),
        _outcome("mnist-pooling_cnn-adam-seed1", 0.99),
        _outcome("mnist-pooling_cnn-adam-seed2", 0.97, skipped=True),
        _outcome("mnist-strided_cnn-adam-seed0", 0.98761, skipped=True),
    ]
    lines = summary_table(outcomes, 600.0).splitlines()
    assert lines[0].startswith("4 runs in 2 configurations, 10m 00s in this session")
    assert lines[1].split() == ["architecture", "n", "test", "acc", "test", "loss", "best", "acc", "time"]
    # the one setting that varies is the first column; mean ± sample sd over the seeds, and n
    assert lines[2].split()[:6] == ["pooling_cnn", "3", "0.9800", "±", "0.0100", "0.0200"]
    assert lines[2].endswith("27m 36s")  # three runs' training time; not all of them from an earlier session
    assert lines[3].split()[:4] == ["strided_cnn", "1", "0.9876", "0.0124"]  # one seed: its value, no ±
    assert lines[3].endswith("9m 12s (earlier)")


def test_summary_table_columns_for_the_settings_that_vary() -> None:
    outcomes = [
        _outcome(f"mnist-strided_cnn-adam-lr{lr:g}-seed{k}", 0.9 + lr / 10, lr=lr) for lr in (0.01, 0.1) for k in (0, 1)
    ]
    lines = summary_table(outcomes, 60.0).splitlines()
    assert lines[1].split()[:2] == ["lr", "n"]
    assert [line.split()[:2] for line in lines[2:]] == [["0.01", "2"], ["0.1", "2"]]
    single = summary_table(outcomes[:1], 60.0).splitlines()
    assert single[1].split()[0] == "configuration" and single[2].startswith("mnist-strided_cnn-adam-lr0.01 ")


def test_status_reads_each_state_from_the_files_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    names = ["finished", "running", "died", "waiting"]
    runs = [{"dir": n, "dataset": "mnist", "architecture": "pooling_cnn", "epochs": 2, "val_split": 0.2} for n in names]
    manifest = {"name": "demo", "runs": runs, "command": "cnnkit run --study demo.toml", "cwd": os.getcwd()}
    (tmp_path / "study.json").write_text(json.dumps(manifest))
    one_epoch = "epoch,train_loss,train_accuracy,val_loss,val_accuracy\n1,0,0,0,0\n"
    for name in names[:3]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.csv").write_text(one_epoch)
    config = {"data": {"train": 48_000, "image_shape": [28, 28, 1]}}
    (tmp_path / "finished" / "config.json").write_text(json.dumps(config))
    result = {"dataset": "mnist", "architecture": "pooling_cnn", "test_accuracy": 0.99, "test_loss": 0.03}
    curves = {key: [0.1, 0.05] for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")}
    result |= {"best_epoch": 2, "history": curves, "train_seconds": 100.0, "images_per_second": 960}
    (tmp_path / "finished" / "result.json").write_text(json.dumps(result))
    (tmp_path / "died" / ".lock").write_text(json.dumps({"host": "node7", "pid": 4242, "started": 0}))
    with hold_run_lock(tmp_path / "running"):
        code, out, _ = cli(capsys, "status", str(tmp_path))
    assert code == 0
    assert out.splitlines() == [
        f"Study demo ({tmp_path}): 1 finished, 1 running, 1 interrupted, 1 pending",
        "  finished     finished  test accuracy 0.9900, loss 0.0300; best epoch 2/2, 1m 40s training",
        f"  running      running   training epoch 2/2 (1 done), pid {os.getpid()} on host {socket.gethostname()}",
        "  interrupted  died      stopped after epoch 1/2: pid 4242 on host node7 died; "
        "resume with: cnnkit run --study demo.toml",
        "  pending      waiting   2 epochs",
        # 4 epochs x 48,000 images at 960/s, then each run's testing: 10,000 images, 2 passes at a third of the cost
        "Time left: about 3m 41s, testing included (from the measured epochs)",
    ]
    code, out, _ = cli(capsys, "status", str(tmp_path), "--json")
    assert json.loads(out)["counts"] == {"finished": 1, "running": 0, "interrupted": 2, "pending": 1}
    assert cli(capsys, "status", str(tmp_path / "nowhere"))[:1] == (2,)


@pytest.mark.slow
@pytest.mark.realdata
def test_study_log_has_run_headers_an_eta_and_the_closing_table(tmp_path: Path) -> None:
    data = real_data_dir("mnist.npz")
    args = ["run", "--study", str(study_file(tmp_path)), "--subset", "1000", "--report-format", "html", "--jobs", "1"]
    done = cli_subprocess(*args, "--out", str(tmp_path / "runs"), "--data-dir", str(data), timeout=1800)
    assert done.returncode == 0, done.stderr
    err = done.stderr.splitlines()
    headers = [line for line in err if line.startswith("[")]
    assert headers[0] == (
        "[1/3] mnist · pooling_cnn · adam · seed 0 — 1 epoch, 800 train / 200 val; study ETA after the first epoch"
    )
    assert re.fullmatch(r"\[2/3\] mnist · strided_cnn · adam · seed 0 — .*; study ETA [0-9hms ]+", headers[1]), headers
    assert headers[2].startswith("[3/3] mnist · strided_cnn · adagrad · seed 0")
    epoch_lines = [line for line in err if line.startswith("Epoch 1/1")]
    assert len(epoch_lines) == 3 and all(re.search(r" - study ETA [0-9hms ]+$", line) for line in epoch_lines), err
    assert sum(line.strip().startswith("Test: accuracy") for line in err) == 3
    table = done.stdout.splitlines()
    assert table[0].startswith("3 runs in 3 configurations, ") and "test acc" in table[1]
    assert table[1].split()[:3] == ["architecture", "optimizer", "n"]  # the settings that vary, then the seeds
    assert [row.split()[:3] for row in table[2:5]] == [[*d.split("-")[1:3], "1"] for d in RUN_DIRS]
    assert table[-1] == f"report: {tmp_path / 'runs' / 'watch-subset1000' / 'report' / 'report.html'}"


@pytest.mark.slow
@pytest.mark.realdata
def test_status_mid_run_then_after_the_process_died(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = real_data_dir("mnist.npz")
    study_dir = tmp_path / "runs" / "watch-subset1000"
    study = study_file(tmp_path, epochs=2)
    args = ["run", "--study", str(study), "--subset", "1000", "--quiet", "--jobs", "1", "--out", str(tmp_path / "runs")]
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnkit.cli", *args, "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    second = study_dir / RUN_DIRS[1] / "metrics.csv"
    deadline = time.monotonic() + 600
    while not (second.exists() and len(second.read_text().splitlines()) >= 2) and time.monotonic() < deadline:
        assert process.poll() is None, "the study ended before its second run trained an epoch"
        time.sleep(0.05)
    process.send_signal(signal.SIGSTOP)  # frozen mid-run: it still holds the run's lock
    try:
        code, out, _ = cli(capsys, "status", str(study_dir))
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == f"Study watch ({study_dir}): 1 finished, 1 running, 0 interrupted, 1 pending"
        finished = rf"  finished +{RUN_DIRS[0]} +test accuracy 0\.\d{{4}}, loss .*; best epoch [12]/2, .* training"
        assert re.fullmatch(finished, lines[1]), lines[1]
        who = f"pid {process.pid} on host {socket.gethostname()}"
        assert lines[2].split(RUN_DIRS[1])[1].strip() == f"training epoch 2/2 (1 done), {who}"
        assert lines[3].split(RUN_DIRS[2])[1].strip() == "2 epochs"
        assert re.fullmatch(r"Time left: about [0-9hms ]+, testing included \(from the measured epochs\)", lines[4])
        code, out, _ = cli(capsys, "status", str(study_dir), "--json")
        report = json.loads(out)
        assert report["counts"] == {"finished": 1, "running": 1, "interrupted": 0, "pending": 1}
        assert report["runs"][1]["pid"] == process.pid and report["seconds_left"] > 0
    finally:
        process.kill()
        process.wait()

    code, out, _ = cli(capsys, "status", str(study_dir))
    lines = out.splitlines()
    assert code == 0 and lines[0].endswith("1 finished, 0 running, 1 interrupted, 1 pending")
    resume = f"cnnkit {' '.join(args)} --data-dir {data}"
    assert lines[2].split(RUN_DIRS[1])[1].strip() == f"stopped after epoch 1/2: {who} died; resume with: {resume}"
    assert lines[-1] == f"Resume with: {resume}"


@pytest.mark.realdata
def test_a_study_with_a_dataset_missing_stops_before_its_first_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.utils as tv_utils

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist.npz").symlink_to(real_data_dir("mnist.npz") / "mnist.npz")
    study = study_file(tmp_path, third='dataset = "cifar10"\narchitecture = "net_1"')
    code, _, err = cli(capsys, "run", "--study", str(study), "--out", str(tmp_path / "runs"), "--data-dir", str(data))
    assert code == 2 and "no cifar10 data in" in err and "Traceback" not in err
    assert "[1/3]" not in err and not (tmp_path / "runs").exists()
