"""Training levers: augmentations, dropout, weight decay, schedules, early stopping, and the names they give runs."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cnnkit_plugins.image_ops import CROP_PADDING, cutout, random_crop, random_flip
from helpers import cli, cli_subprocess, real_data_dir, write_mnist_npz

from cnnkit.data.augment import BatchAugmenter
from cnnkit.plugins import get_registries
from cnnkit.training.config import RunConfig

LEVER_ARGS = ["--augment", "flip,crop,cutout", "--dropout", "0.25", "--weight-decay", "5e-4"]
LEVER_ARGS += ["--lr-schedule", "cosine", "--early-stopping", "3"]


def _batch(n: int = 64, c: int = 3, size: int = 16) -> torch.Tensor:
    return torch.randint(1, 256, (n, c, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def _generator(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_flip_mirrors_about_half_of_the_images_and_leaves_the_rest() -> None:
    images = _batch(400)
    out = random_flip(images, _generator())
    same = (out == images).flatten(1).all(1)
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    assert 150 < int(mirrored.sum()) < 250
    assert out.dtype == torch.uint8 and out.shape == images.shape


def test_crop_is_a_window_of_the_padded_image_at_every_offset() -> None:
    images = _batch(300, size=12)
    out = random_crop(images, _generator())
    pad = CROP_PADDING
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    offsets = set()
    for i in range(len(images)):
        found = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(padded[i, :, dy : dy + 12, dx : dx + 12], out[i])
        ]
        assert found, f"image {i} is not a window of its padded original"
        offsets.add(found[0])
    assert len(offsets) > 40  # the 81 offsets are all drawn, not one shift for the batch


def test_cutout_blanks_one_square_and_keeps_every_other_pixel() -> None:
    images = _batch(50, size=16)
    out = cutout(images, _generator())
    changed = out != images
    assert bool((out[changed] == 0).all())
    blanked = (out == 0).any(1)  # (N, H, W)
    for i in range(len(images)):
        rows, cols = torch.nonzero(blanked[i], as_tuple=True)
        assert len(rows) > 0
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert height <= 4 and width <= 4 and len(rows) == height * width  # one square (clipped at borders)


def test_augmentation_draws_depend_only_on_seed_epoch_and_step() -> None:
    images = _batch(32)
    augmenter = BatchAugmenter([random_flip, random_crop, cutout], seed=3)
    first = augmenter(images, epoch=2, step=5)
    assert torch.equal(first, augmenter(images, epoch=2, step=5))
    assert not torch.equal(first, augmenter(images, epoch=2, step=6))
    assert not torch.equal(first, BatchAugmenter([random_flip, random_crop, cutout], seed=4)(images, 2, 5))


def test_dropout_keeps_parameter_counts_and_shows_in_the_layer_table(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.nets.summary import summarize

    registries = get_registries()
    for architecture, dataset, params in (("net_1", "cifar10", 2_117_962), ("net_2", "mnist", 1_625_866)):
        datamodule = registries.datasets.get(dataset)
        model = registries.architectures.get(architecture)(
            datamodule.input_shape(), datamodule.num_classes(), None, "keras", dropout=0.25
        )
        summary = summarize(model.network, datamodule.input_shape())
        assert summary.counts.params == params
        types = [layer.type for layer in summary.layers]
        assert types.count("Dropout") == 2
        # after the downsampling stage, and after the 128-unit dense layer
        assert types[types.index("Dropout") - 1] in ("MaxPooling2D", "Conv2D")
        assert types[-2] == "Dropout" and types[-3] == "Dense"


def test_weight_decay_follows_the_preset() -> None:
    registries = get_registries()
    adam = registries.optimizers.get("adam")
    assert adam.hyperparameters("torch", None, 0.01)["weight_decay"] == 0.01
    assert adam.hyperparameters("keras", None, 0.01)["weight_decay"] == 0  # applied apart, as Keras does
    datamodule = registries.datasets.get("mnist")
    model = registries.architectures.get("net_2")(
        datamodule.input_shape(), datamodule.num_classes(), adam, "keras", 0.1, weight_decay=0.5
    )
    optimizer = model.configure_optimizers()
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    model.on_before_optimizer_step(optimizer)
    for old, new in zip(before, model.parameters(), strict=True):
        assert torch.allclose(new, old * (1 - 0.1 * 0.5))  # w <- w - lr * wd * w


def test_directory_names_show_what_differs_from_the_defaults() -> None:
    registries = get_registries()

    def name(**settings: object) -> str:
        return RunConfig(**{"dataset": "mnist", "architecture": "net_1", **settings}).checked(registries).dir_name

    assert name(optimizer="adadelta") == "mnist-pooling_cnn-adadelta-seed0"
    assert name(optimizer="adadelta", lr=0.1) == "mnist-pooling_cnn-adadelta-lr0.1-seed0"
    assert (
        name(augment=("flip", "crop"), dropout=0.25, weight_decay=5e-4, lr_schedule="cosine", early_stopping=3, seed=2)
        == "mnist-pooling_cnn-adam-aug_flip+crop-drop0.25-wd0.0005-sched_cosine-es3-seed2"
    )
    assert name(epochs=3, subset=500) == "mnist-pooling_cnn-adam-seed0"  # the budget is not part of the name
    assert name(label="baseline") == "baseline-seed0"


def test_an_older_config_without_the_lever_keys_is_the_same_configuration() -> None:
    shipped = Path(__file__).parent.parent / "examples/results/assignment/mnist-strided_cnn-adadelta-seed0"
    stored = json.loads((shipped / "config.json").read_text())["run"]
    config = RunConfig("mnist", "strided_cnn", "adadelta").checked(get_registries())
    assert config.differences_from(stored) == []
    assert config.dir_name == shipped.name
    assert RunConfig("mnist", "strided_cnn", "adadelta", dropout=0.5).differences_from(stored) == [
        "dropout 0.0 there vs 0.5 now"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--augment", "spin"], "unknown augmentation 'spin'"),
        (["--dropout", "1.5"], "--dropout must be a number from 0 up to (not including) 1, got 1.5"),
        (["--early-stopping", "0"], "--early-stopping must be at least 1, got 0"),
        (["--weight-decay", "-1"], "--weight-decay must be a number of at least 0, got -1.0"),
        (["--lr-schedule", "cosin"], "unknown schedule 'cosin'; did you mean 'cosine'?"),
        (["--augment", "flip,flip"], "--augment names flip twice"),
    ],
)
def test_a_bad_lever_value_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, err = cli(capsys, "run", "mnist", "net_1", *args, "--out", str(tmp_path))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_early_stopping_records_where_the_run_stopped(tmp_path: Path) -> None:
    """The validation images carry shifted labels, so val_loss rises from epoch 1 on: patience 1 stops at 2."""
    data = tmp_path / "data"
    data.mkdir()
    write_mnist_npz(data, contradict=slice(800, 1000))
    args = ["run", "mnist", "net_2", "--epochs", "6", "--subset", "1000", "--early-stopping", "1", "--quiet"]
    result = cli_subprocess(*args, "--data-dir", str(data), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "out" / "single" / "mnist-strided_cnn-adam-es1-seed0"
    record = json.loads((run_dir / "result.json").read_text())
    assert record["stopped_epoch"] == 2 and record["planned_epochs"] == 6 and record["best_epoch"] == 1
    assert len(record["history"]["val_loss"]) == 2
    assert "Stopped early after epoch 2/6. Test: accuracy" in result.stdout
    status = cli_subprocess("status", str(tmp_path / "out" / "single"))
    assert "best epoch 1/2 (stopped early: 2 of 6 epochs)" in status.stdout, status.stdout + status.stderr
    assert json.loads((run_dir / "config.json").read_text())["levers"]["early_stopping"] == 1


@pytest.mark.slow
@pytest.mark.realdata
def test_every_lever_together_trains_records_and_resumes_to_identical_numbers(tmp_path: Path) -> None:
    data = real_data_dir("mnist.npz")
    args = ["run", "mnist", "net_2", *LEVER_ARGS, "--epochs", "3", "--subset", "3000", "--quiet"]
    args += ["--data-dir", str(data)]
    reference = cli_subprocess(*args, "--out", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    name = "mnist-strided_cnn-adam-aug_flip+crop+cutout-drop0.25-wd0.0005-sched_cosine-es3-seed0"
    out = tmp_path / "killed"
    run_dir = out / "single" / name
    process = subprocess.Popen([sys.executable, "-m", "cnnkit.cli", *args, "--out", str(out)])
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoints" / "last.ckpt").exists() and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(0.5)  # into the second epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "result.json").exists()
    resumed = cli_subprocess(*args, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    first, second = (
        json.loads((d / "result.json").read_text()) for d in (tmp_path / "reference/single" / name, run_dir)
    )
    assert first["history"] == second["history"] and first["test_loss"] == second["test_loss"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["levers"] == {
        "augment": ["flip", "crop", "cutout"],
        "dropout": 0.25,
        "weight_decay": 0.0005,
        "weight_decay_mode": "decoupled",
        "lr_schedule": "cosine",
        "lr_schedule_settings": {"eta_min": 0.0, "T_max": 3},
        "early_stopping": 3,
        "label_smoothing": 0.0,
    }
    assert config["data"]["source"] == "mnist.npz"
    with open(run_dir / "metrics.csv") as handle:
        rates = [float(row["lr"]) for row in csv.DictReader(handle)]
    assert rates == pytest.approx([1e-3, 7.5e-4, 2.5e-4])  # cosine from Adam's 1e-3 over 3 epochs
