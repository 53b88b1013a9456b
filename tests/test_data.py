"""Preprocessing helpers, the Keras-style split and the in-memory batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cnnkit_plugins.datamodules import MNISTDataModule
from helpers import write_mnist_npz

from cnnkit.data.datamodule import TensorBatches, epoch_permutation, keras_validation_split, normalize_images, one_hot
from cnnkit.errors import UsageError


def test_normalize_images_divides_by_255() -> None:
    assert normalize_images([0, 127, 255]).tolist() == pytest.approx([0.0, 127 / 255, 1.0])
    assert normalize_images(np.array([0, 127, 255], dtype=np.uint8)).dtype == np.float32
    tensor = normalize_images(torch.tensor([0, 127, 255], dtype=torch.uint8))
    assert tensor.dtype == torch.float32 and tensor.tolist() == pytest.approx([0.0, 127 / 255, 1.0])


def test_one_hot() -> None:
    assert one_hot([1, 0], 3).tolist() == [[0, 1, 0], [1, 0, 0]]
    assert one_hot(torch.tensor([2]), 3).tolist() == [[0, 0, 1]]
    with pytest.raises(ValueError, match="labels must lie in"):
        one_hot([3], 3)


def test_keras_split_keeps_the_last_fraction_for_validation() -> None:
    assert keras_validation_split(60_000, 0.2) == 48_000
    assert keras_validation_split(50_000, 0.2) == 40_000
    assert keras_validation_split(12_000, 0.2) == 9_600
    assert keras_validation_split(10, 0.25) == 7  # Keras floors the training part


def test_shuffled_batches_cover_the_split_once_and_reshuffle_per_epoch() -> None:
    images, labels = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1), torch.arange(10)
    epoch = [0]
    batches = TensorBatches(images, labels, 4, shuffle=True, seed=3, epoch=lambda: epoch[0])
    assert len(batches) == 3
    first = torch.cat([y for _, y in batches])
    assert sorted(first.tolist()) == list(range(10)) and first.tolist() != list(range(10))
    assert torch.equal(torch.cat([y for _, y in batches]), first)  # same epoch, same order
    assert torch.equal(first, epoch_permutation(10, 3, 0))
    epoch[0] = 1
    assert not torch.equal(torch.cat([y for _, y in batches]), first)
    assert all(torch.equal(x.flatten().long(), y) for x, y in batches)  # images and labels stay paired


def test_ddp_shards_are_disjoint_and_padded_to_equal_length() -> None:
    images, labels = torch.zeros(11, 1, 1, 1, dtype=torch.uint8), torch.arange(11)
    shards = [
        torch.cat([y for _, y in TensorBatches(images, labels, 2, shuffle=True, rank=r, world=2)]) for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == 6
    assert set(shards[0].tolist()) | set(shards[1].tolist()) == set(range(11))


def test_evaluation_batches_are_in_order_and_whole() -> None:
    labels = torch.arange(25)
    batches = TensorBatches(torch.zeros(25, 1, 1, 1, dtype=torch.uint8), labels, 10)
    assert [len(y) for _, y in batches] == [10, 10, 5]
    assert torch.equal(torch.cat([y for _, y in batches]), labels)


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mnist")
    write_mnist_npz(directory)
    return directory


def test_datamodule_split_subset_and_scaling(synthetic_dir: Path) -> None:
    raw = np.load(synthetic_dir / "mnist.npz")
    datamodule = MNISTDataModule(data_dir=synthetic_dir, subset=1000, val_split=0.2, batch_size=128)
    datamodule.setup("fit")
    assert datamodule.split_sizes() == {"train": 800, "val": 200, "test": 10_000}
    assert datamodule.source.endswith("mnist.npz")
    val_images, val_labels = datamodule.split("val")
    assert val_images.shape == (200, 1, 28, 28) and val_images.dtype == torch.uint8
    assert np.array_equal(val_images[:, 0].numpy(), raw["x_train"][800:1000])  # the LAST 20% of the subset
    assert np.array_equal(val_labels.numpy(), raw["y_train"][800:1000])
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.dtype == torch.uint8 and len(labels) == 128
    scaled, same_labels = datamodule.on_after_batch_transfer((images, labels), 0)
    assert scaled.dtype == torch.float32 and float(scaled.max()) <= 1.0
    assert torch.allclose(scaled * 255, images.float())
    assert same_labels is labels


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_split": 0.0}, "--val-split must be between 0 and 1"),
        ({"val_split": 1.5}, "--val-split must be between 0 and 1"),
        ({"batch_size": 0}, "--batch-size must be a positive integer"),
        ({"subset": 1}, "--subset must be an integer of at least 2"),
    ],
)
def test_datamodule_refuses_bad_settings(synthetic_dir: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        MNISTDataModule(data_dir=synthetic_dir, **kwargs)


def test_subset_larger_than_the_training_set(synthetic_dir: Path) -> None:
    with pytest.raises(UsageError, match="--subset 70000 is larger than the 60000 training images"):
        MNISTDataModule(data_dir=synthetic_dir, subset=70_000).setup("fit")
