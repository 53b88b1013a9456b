"""The results contract on a run whose best epoch is not its last (synthetic data, CPU, deterministic)."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import write_mnist_npz

from cnnkit.cli import main


@pytest.fixture(scope="module")
def diverging_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose validation loss rises from the first epoch on, by construction rather than by luck.

    The validation split (images 800-999 of the 1,000 kept) carries labels shifted by one class, so every
    epoch that fits the training images better fits these worse: the best epoch is the first on any CPU,
    whatever the rounding of its kernels (a diverging optimizer's trajectory, used before, was not).
    """
    data = tmp_path_factory.mktemp("data")
    write_mnist_npz(data, contradict=slice(800, 1000))
    out = tmp_path_factory.mktemp("runs")
    args = [
        "run",
        "mnist",
        "net_2",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--subset",
        "1000",
        "--epochs",
        "4",
        "--quiet",
        "--data-dir",
        str(data),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    return out / "single" / "mnist-strided_cnn-sgd-lr0.05-seed0"


def test_history_covers_every_epoch_even_when_the_best_is_earlier(diverging_run: Path) -> None:
    result = json.loads((diverging_run / "result.json").read_text())
    with open(diverging_run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    val_loss = result["history"]["val_loss"]
    assert val_loss[-1] > 1.5 * min(val_loss) and result["epochs"] == 4  # the situation this test is about
    assert len(rows) == 4 and all(len(values) == 4 for values in result["history"].values())
    for name, values in result["history"].items():
        assert [round(v, 6) for v in values] == [float(row[name]) for row in rows]
    assert len(result["epoch_seconds"]) == 4
    assert result["train_seconds"] == pytest.approx(sum(result["epoch_seconds"]))
    assert result["images_per_second"] == pytest.approx(800 * 4 / result["train_seconds"])
    assert result["best_epoch"] == 1 + min(range(4), key=lambda i: result["history"]["val_loss"][i])
    finished = datetime.fromisoformat(result["finished"].replace("Z", "+00:00"))  # when it ran, for the report
    assert abs(datetime.now(timezone.utc) - finished) < timedelta(hours=2)


def test_config_records_every_resolved_setting(diverging_run: Path) -> None:
    config = json.loads((diverging_run / "config.json").read_text())
    assert config["run"] == {
        "dataset": "mnist",
        "architecture": "strided_cnn",
        "optimizer": "sgd",
        "arch": None,  # a convnet family table; the built-in nets need none
        "preset": "keras",
        "seed": 0,
        "epochs": 4,
        "batch_size": 128,
        "val_split": 0.2,
        "subset": 1000,
        "lr": 0.05,
        # the levers, off
        "augment": [],
        "dropout": 0.0,
        "weight_decay": 0.0,
        "lr_schedule": None,
        "early_stopping": None,
        "label_smoothing": 0.0,
        "label": None,
    }
    assert list(config["run"])[:3] == ["dataset", "architecture", "optimizer"]
    assert config["optimizer_hparams"]["lr"] == 0.05 and config["optimizer_hparams"]["momentum"] == 0.0
    assert config["model"]["params"] == 1_625_866 and config["data"]["train"] == 800
    assert config["trainer"]["deterministic"] is True and config["versions"]["lightning"]


def test_last_checkpoint_is_the_last_epoch_and_best_the_best(diverging_run: Path) -> None:
    import torch

    result = json.loads((diverging_run / "result.json").read_text())

    def load(name: str) -> dict:
        return torch.load(diverging_run / "checkpoints" / name, map_location="cpu", weights_only=True)

    assert load("last.ckpt")["epoch"] == 3  # 0-based: after the 4th epoch, so a resumed run continues from there
    assert load("best.ckpt")["epoch"] == result["best_epoch"] - 1


def test_predictions_keep_test_probabilities_and_the_gallery_positions(diverging_run: Path) -> None:
    import numpy as np

    from cnnkit.results.reading import load_predictions

    with np.load(diverging_run / "predictions.npz") as z:
        probabilities, y_true, y_pred = z["probabilities"], z["y_true"], z["y_pred"]
        index, images_true = z["misclassified_index"], z["misclassified_true"]
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(y_true), 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities.argmax(axis=1) == y_pred).all()  # the final weights' predictions
    assert (y_true[index] == images_true).all() and (y_true[index] != y_pred[index]).all()
    assert list(index) == sorted(index)  # test-set order: the first misclassified images
    loaded = load_predictions(diverging_run)
    assert loaded is not None and loaded.probabilities is not None and loaded.probabilities.shape == probabilities.shape
