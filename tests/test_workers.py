"""Long-lived job workers: datasets kept per process, the live block of side-by-side jobs, the parallel ETA."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from cnnkit_plugins.datamodules import MNISTDataModule
from helpers import write_mnist_npz

from cnnkit.console.eta import parallel_seconds
from cnnkit.console.job_board import JobBoard, JobLine
from cnnkit.data import cache
from cnnkit.plugins import get_registries
from cnnkit.studies.jobs import Job
from cnnkit.studies.order import longest_first
from cnnkit.training.config import RunConfig


def terminal_screen(text: str) -> list[str]:
    """What a terminal shows after `text`: lines, with the cursor-up and clear-below codes the block uses."""
    rows, row = [""], 0
    for token in re.split(r"(\x1b\[\d*[FJ]|\n)", text.replace("\r", "")):
        if token == "\n":
            row += 1
            rows += [""] * (row + 1 - len(rows))
        elif match := re.fullmatch(r"\x1b\[(\d*)F", token):
            row -= int(match[1] or 1)
        elif token == "\x1b[J":
            del rows[row + 1 :]
            rows[row] = ""
        else:
            rows[row] += token
    return [line for line in rows if line]


def test_a_dataset_is_read_once_per_process_and_again_when_its_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_mnist_npz(tmp_path)
    cache.clear()
    reads: list[Path] = []
    read = cache.load_image_set
    monkeypatch.setattr(
        cache,
        "load_image_set",
        lambda spec, sources, where, **kw: reads.append(where) or read(spec, sources, where, **kw),
    )

    def loaded(**settings: object) -> MNISTDataModule:
        datamodule = MNISTDataModule(data_dir=tmp_path, **settings)
        datamodule.load_arrays()
        datamodule.setup()
        return datamodule

    first, second = loaded(subset=500), loaded(subset=300, val_split=0.5)
    assert len(reads) == 1
    assert second.split_sizes() == {"train": 150, "val": 150, "test": 10_000}
    assert second.split("train")[0].data_ptr() == first.split("train")[0].data_ptr()  # views, nothing copied
    with np.load(path) as npz:  # the values of the file, as NCHW
        expected = torch.from_numpy(npz["x_train"][150:300]).unsqueeze(1)
        assert torch.equal(second.split("val")[0], expected)
        assert torch.equal(second.split("test")[1], torch.from_numpy(npz["y_test"].astype(np.int64)))

    write_mnist_npz(tmp_path, seed=1)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    third = loaded(subset=500)
    assert len(reads) == 2 and not torch.equal(third.split("train")[0], first.split("train")[0])
    cache.clear()


def test_the_live_block_draws_one_line_per_job_below_the_lines_that_stay() -> None:
    stream = io.StringIO()
    board = JobBoard(stream, live=True, interval=0.0)
    board.start("mnist-net_1-adam-seed0")
    board.start("cifar10-net_1-adagrad-seed0")
    board.batch("mnist-net_1-adam-seed0", 2, 10, 5, 10)
    board.footer = "study: 2 running, 3 waiting; ETA 4m 00s"
    board.line("mnist-net_1-adam-seed0", "Epoch 1/10 - 1.0s - loss: 0.5000")
    screen = terminal_screen(stream.getvalue())
    assert screen[0] == "[mnist-net_1-adam-seed0] Epoch 1/10 - 1.0s - loss: 0.5000"
    assert re.fullmatch(r"mnist-net_1-adam-seed0 +Epoch 2/10 \[=+>\.+\] 5/10  ETA \d+s", screen[1]), screen
    assert re.fullmatch(r"cifar10-net_1-adagrad-seed0 +starting", screen[2])
    assert screen[3:] == ["study: 2 running, 3 waiting; ETA 4m 00s"]
    board.stop("mnist-net_1-adam-seed0")
    board.line("mnist-net_1-adam-seed0", "Test: accuracy 0.9900")
    board.close()
    assert terminal_screen(stream.getvalue()) == [
        "[mnist-net_1-adam-seed0] Epoch 1/10 - 1.0s - loss: 0.5000",
        "[mnist-net_1-adam-seed0] Test: accuracy 0.9900",
    ]


def test_into_a_file_the_jobs_lines_stay_plain() -> None:
    stream = io.StringIO()
    board = JobBoard(stream, live=False)
    board.start("a-seed0")
    board.batch("a-seed0", 1, 2, 3, 4)
    board.line("a-seed0", "Epoch 1/2 - 1.0s")
    board.close()
    assert stream.getvalue() == "[a-seed0] Epoch 1/2 - 1.0s\n"


def test_run_and_study_eta_account_for_the_epochs_left_and_the_parallel_slots() -> None:
    halfway = JobLine("a", epoch=2, epochs=10, batch=5, batches=10, started=100.0)
    assert halfway.seconds_left(now=110.0) == pytest.approx(10 + 8 * 20)  # this epoch's pace: 20 s an epoch
    assert JobLine("a", 2, 10, 5, 10, 100.0, epoch_seconds=30.0).seconds_left(now=110.0) == pytest.approx(20 + 8 * 30)
    assert parallel_seconds([10, 10, 10], slots=1) == 30
    assert parallel_seconds([10, 10, 10], slots=2) == 20
    assert parallel_seconds([30, 5, 5, 5], slots=2) == 30  # a long run ends last whatever the slots


def test_status_shows_every_run_in_training_and_times_the_rest_side_by_side(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import contextlib
    import json
    import socket

    from helpers import cli

    from cnnkit.storage.locks import hold_run_lock

    names = ["finished", "first", "second", "waiting"]
    runs = [{"dir": n, "dataset": "mnist", "architecture": "pooling_cnn", "epochs": 2, "val_split": 0.2} for n in names]
    (tmp_path / "study.json").write_text(json.dumps({"name": "demo", "runs": runs}))
    for name in names[:3]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.csv").write_text(
            "epoch,train_loss,train_accuracy,val_loss,val_accuracy\n1,0,0,0,0\n"
        )
    (tmp_path / "finished" / "config.json").write_text(json.dumps({"data": {"train": 48_000, "image_shape": [28, 28]}}))
    result = {"dataset": "mnist", "architecture": "pooling_cnn", "test_accuracy": 0.99, "test_loss": 0.03}
    curves = {key: [0.1, 0.05] for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")}
    result |= {"best_epoch": 2, "history": curves, "train_seconds": 100.0, "images_per_second": 960}
    (tmp_path / "finished" / "result.json").write_text(json.dumps(result))
    with contextlib.ExitStack() as held:
        for name in ("first", "second"):
            held.enter_context(hold_run_lock(tmp_path / name))
        code, out, _ = cli(capsys, "status", str(tmp_path))
    lines = out.splitlines()
    assert code == 0 and lines[0].endswith("1 finished, 2 running, 0 interrupted, 1 pending")
    who = f"pid {os.getpid()} on host {socket.gethostname()}"
    assert [line.split(maxsplit=2)[1:] for line in lines[2:4]] == [
        ["first", f"training epoch 2/2 (1 done), {who}"],
        ["second", f"training epoch 2/2 (1 done), {who}"],
    ]
    # 50 s an epoch: the two in training end together after 50 s, then the pending run's 2 epochs (100 s); each
    # run's testing (10,000 images, two passes at a third of an epoch's cost per image: 7 s) after its epochs
    assert lines[-1] == "Time left: about 2m 44s, testing included (from the measured epochs)"


def test_workers_take_the_longest_runs_first_and_the_eta_deals_them_in_that_order(tmp_path: Path) -> None:
    registries = get_registries()
    configs = [
        RunConfig("mnist", "strided_cnn", epochs=2),  # net_2: a third of net_1's multiply-adds per image
        RunConfig("mnist", "pooling_cnn", epochs=1),
        RunConfig("mnist", "strided_cnn", epochs=1),
        RunConfig("mnist", "pooling_cnn", epochs=1, seed=1),
    ]
    jobs = [Job(config, None, number, tmp_path, "s", False) for number, config in enumerate(configs, start=1)]
    assert [job.number for job in longest_first(jobs, registries)] == [2, 4, 1, 3]  # ties keep the study's order

    class Unbuildable:
        def __init__(self, *args: object) -> None:
            raise RuntimeError("a plugin that cannot be built")

    broken = SimpleNamespace(datasets=registries.datasets, architectures=SimpleNamespace(get=lambda name: Unbuildable))
    assert [job.number for job in longest_first(jobs, broken)] == [1, 2, 3, 4]  # a length unknown: study order
