"""The console fits the terminal (issue 27): epoch lines and the live block of side-by-side jobs keep within 80 and
140 columns by shortening their labels (then naming a run by its header's number), never by wrapping."""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import pytest

from cnnkit.console.job_board import JobBoard
from cnnkit.console.progress import epoch_line

METRICS = {"train_loss": 0.1234, "train_accuracy": 0.965, "val_loss": 0.0456, "val_accuracy": 0.986}
LONG = "cifar10-pooling_cnn-adam-aug_flip+crop-drop0.25-wd0.05-sched_cosine-seed0"
OTHER = "cifar10-pooling_cnn-adagrad-aug_flip+crop-drop0.25-wd0.05-sched_cosine-seed0"
ESCAPE = re.compile(r"\x1b\[\d*[A-Za-z]")


def test_an_epoch_line_keeps_its_words_where_they_fit_and_shortens_its_labels_where_not() -> None:
    full = epoch_line(10, 30, 65, METRICS, "ETA 1h 07m")
    assert full == (
        "Epoch 10/30 - 1m 05s - loss: 0.1234 - accuracy: 0.9650 - val_loss: 0.0456 - val_accuracy: 0.9860 - "
        "study ETA 1h 07m"
    )
    assert epoch_line(10, 30, 65, METRICS, "ETA 1h 07m", width=139) == full
    assert epoch_line(10, 30, 65, METRICS, "ETA 1h 07m", width=100) == (
        "Epoch 10/30 - 1m 05s - loss: 0.1234 - acc: 0.9650 - val_loss: 0.0456 - val_acc: 0.9860 - ETA 1h 07m"
    )
    assert epoch_line(10, 30, 65, METRICS, "ETA 1h 07m", width=79) == (
        "ep 10/30 1m 05s l 0.1234 a 0.9650 vl 0.0456 va 0.9860 ETA 1h 07m"
    )
    for width in (60, 79, 100, 139):
        assert len(epoch_line(10, 30, 65, METRICS, "ETA 1h 07m", width=width)) <= width


def screen_lines(raw: str) -> list[str]:
    return [ESCAPE.sub("", line) for line in raw.split("\n") if ESCAPE.sub("", line)]


@pytest.mark.parametrize("columns", [80, 140])
def test_side_by_side_jobs_fit_the_terminal(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=None: os.terminal_size((columns, 40)))
    stream = io.StringIO()
    board = JobBoard(stream, live=True, interval=0.0)
    board.footer = "study: 2 running, 5 waiting; ETA 1h 07m"
    for number, name in ((1, LONG), (2, OTHER)):
        board.line(None, f"[{number}/7] {name.replace('-', ' · ')} — 30 epochs, started: job {number}, 1 thread")
        board.start(name, f"{number}/7")
        board.batch(name, 10, 30, 120, 313)
    board.epoch_line(LONG, 10, 30, 65.0, METRICS, "ETA 1h 07m")
    board.batch(OTHER, 30, 30, 20, 79, testing=True)
    board.refresh(force=True)
    epoch = next(line for line in screen_lines(stream.getvalue()) if " 10/30 " in line and "0.1234" in line)
    assert len(epoch) <= columns - 1, epoch
    block = screen_lines(stream.getvalue())[-3:]  # what is drawn last: a line per job and the footer
    assert all(len(line) <= columns - 1 for line in block), block
    assert "ETA" in block[0] and "Epoch 10/30 [" in block[0] and "testing [" in block[1] and "20/79" in block[1]
    if columns == 80:  # the runs' names give way to their headers' numbers
        assert epoch.startswith("[1/7] ") and block[0].startswith("[1/7]") and block[1].startswith("[2/7]")
    else:  # Keras' words after the header's number, rather than short labels after the run's long name
        assert epoch.startswith("[1/7] Epoch 10/30 - 1m 05s - loss: 0.1234 - accuracy: 0.9650")
        assert block[0].startswith(LONG)


def test_into_a_file_every_line_is_whole() -> None:
    stream = io.StringIO()
    board = JobBoard(stream, live=False)
    board.start(LONG, "1/7")
    board.epoch_line(LONG, 10, 30, 65.0, METRICS, "ETA 1h 07m")
    assert stream.getvalue() == f"[{LONG}] {epoch_line(10, 30, 65.0, METRICS, 'ETA 1h 07m')}\n"


TWO = 'name = "two"\n[defaults]\ndataset = "mnist"\nepochs = 1\n[[runs]]\narchitecture = "net_1"\n'
TWO += '[[runs]]\narchitecture = "net_2"\n'


def test_a_study_says_what_it_starts_before_loading_pytorch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its first line comes before the heavy imports (timed in benchmarks/first_line.py, not here)."""
    from helpers import cli

    (tmp_path / "two.toml").write_text(TWO)
    args = ["run", "--study", str(tmp_path / "two.toml"), "--jobs", "1", "--out", str(tmp_path / "runs")]
    code, _, err = cli(capsys, *args, "--subset", "500", "--data-dir", str(tmp_path / "no-data"))
    assert code == 2  # no MNIST there: refused before any training, after its first line
    where = tmp_path / "runs" / "two-subset500"
    assert err.splitlines()[0] == f"Study two: 2 runs into {where}/ (loading PyTorch and Lightning...)"


@pytest.mark.slow
def test_more_jobs_than_cores_are_noted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import cli

    import cnnkit.studies.executors as executors

    monkeypatch.setattr(executors, "usable_cores", lambda: 1)
    (tmp_path / "two.toml").write_text(TWO)
    args = ["run", "--study", str(tmp_path / "two.toml"), "--jobs", "2", "--out", str(tmp_path / "runs")]
    code, _, err = cli(capsys, *args, "--data-dir", str(tmp_path / "no-data"))
    assert code == 2
    assert "note: 2 jobs at once on 1 core: they share the cores, which is seldom faster than 1 at once" in err
