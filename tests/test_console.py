"""What a user sees while a run trains: Keras-clear epoch lines in a log file and on a terminal, no chatter."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import cli_subprocess, real_data_dir

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
CHATTER = (
    "GPU available",
    "TPU available",
    "Restoring states",
    "Loaded model weights",
    "`Trainer.fit` stopped",
    "(1 epochs)",
    "LOCAL_RANK",
)


def run_args(out: Path, *extra: str) -> list[str]:
    data = real_data_dir("mnist.npz")
    return ["run", "mnist", "net_2", "--subset", "1000", "--out", str(out), "--data-dir", str(data), *extra]


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after `raw`: a carriage return goes back to column 0, ESC[K erases to the end."""
    lines: list[str] = []
    for physical in raw.replace("\r\n", "\n").split("\n"):
        row: list[str] = []
        column = 0
        for token in re.split(r"(\r|\x1b\[K)", physical):
            if token == "\r":
                column = 0
            elif token == "\x1b[K":
                del row[column:]
            else:
                row[column : column + len(token)] = list(token)
                column += len(token)
        lines.append("".join(row))
    return [line for line in lines if line]


def test_log_file_of_a_3_epoch_run_holds_plain_epoch_lines_and_no_chatter(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    with open(log, "w") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "cnnkit.cli", *run_args(tmp_path / "runs", "--epochs", "3")],
            stdout=handle,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    text = log.read_text()
    assert done.returncode == 0, text
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text and len(lines) <= 14, text
    assert lines[0] == "mnist · strided_cnn · adam · seed 0 — 3 epochs, 800 train / 200 val"
    epochs = [line for line in lines if line.startswith("Epoch ")]
    assert [line.split(" - ")[0] for line in epochs] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    figures = r"loss: \d\.\d{4} - accuracy: .* - val_loss: .* - val_accuracy: \d\.\d{4}$"
    assert all(re.search(figures, line) for line in epochs), epochs
    test = next(line for line in lines if line.startswith("Test: "))
    assert re.match(r"Test: accuracy 0\.\d{4}, loss \d+\.\d{4} \(final weights\); best epoch [123]/3", test)
    assert not [phrase for phrase in CHATTER if phrase in text]


@pytest.mark.parametrize("columns", [80, 140])
def test_a_terminal_keeps_every_epoch_line_on_screen_under_the_live_bar(tmp_path: Path, columns: int) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: cnnkit on the pseudo-terminal, `columns` wide
        os.environ["COLUMNS"] = str(columns)
        os.execv(sys.executable, [sys.executable, "-m", "cnnkit.cli", *run_args(tmp_path, "--epochs", "3")])
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    raw = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, raw
    assert re.search(r"\rEpoch 1/3 \[[=>.]+\] \d+/7", raw), "no live bar was drawn"
    assert re.search(r"\rTesting \[[=>.]+\] \d+/\d+", raw), "the live bar did not say it was testing"
    shown = screen(raw)
    epochs = [line for line in shown if re.match(r"(Epoch|ep) \d/3 ", line)]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"], shown
    assert all(len(line) <= columns - 1 for line in epochs), epochs  # fitted, never wrapped
    if columns == 140:  # room for Keras' own words
        assert all(line.startswith("Epoch ") and " - val_accuracy: " in line for line in epochs), epochs
    assert shown[-2].startswith("Test: accuracy ") and not [phrase for phrase in CHATTER if phrase in raw]


def test_verbose_shows_lightning_and_best_last_is_tested_once(tmp_path: Path) -> None:
    done = cli_subprocess(*run_args(tmp_path, "--epochs", "1", "--verbose"))
    assert done.returncode == 0, done.stderr
    assert "GPU available" in done.stderr and "`Trainer.fit` stopped" in done.stderr
    # one epoch: the best weights are the final ones, so no second test pass restores the best checkpoint
    assert "Restoring states" not in done.stderr and "Loaded model weights" not in done.stderr
    assert "best epoch 1/1 (lowest val_loss) is the last: same weights" in done.stdout
    result = json.loads((tmp_path / "single" / "mnist-strided_cnn-adam-seed0" / "result.json").read_text())
    assert (result["best_test_loss"], result["best_test_accuracy"]) == (result["test_loss"], result["test_accuracy"])


def test_tensorboard_logger_writes_the_epoch_curves_inside_the_run_directory(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    done = cli_subprocess(*run_args(tmp_path, "--epochs", "2", "--logger", "tensorboard", "--quiet"))
    assert done.returncode == 0, done.stderr
    logs = tmp_path / "single" / "mnist-strided_cnn-adam-seed0" / "logs"
    events = EventAccumulator(str(logs))
    events.Reload()
    assert len(events.Scalars("val_loss")) == 2  # one point per epoch
    assert {"train_loss", "train_accuracy", "val_accuracy", "train_eval_accuracy"} <= set(events.Tags()["scalars"])
