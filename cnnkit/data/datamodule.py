"""The in-memory datamodule base: the whole split as one uint8 tensor on the training device.

Batches are formed by indexing a shuffled permutation (no per-sample transforms or collation) and are
scaled to [0, 1] on the device, per batch, by `normalize_images` - the assignment's preprocessing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch

from cnnkit.data.augment import Augmentation, BatchAugmenter
from cnnkit.data.cache import device_tensors, load_cached
from cnnkit.data.formats import ImageArrays, ImageSetSpec, Source, default_data_dir
from cnnkit.errors import UsageError

ArrayLike = Any  # numpy array, torch tensor or nested sequence


def normalize_images(images: ArrayLike) -> Any:
    """uint8 pixels in [0, 255] to float32 in [0, 1] by dividing by 255 (numpy or torch in, same kind out)."""
    if isinstance(images, torch.Tensor):
        return images.to(torch.float32).div_(255.0)
    return np.asarray(images, dtype=np.float32) / np.float32(255.0)


def one_hot(vector: ArrayLike, number_classes: int) -> Any:
    """Integer labels (N,) to float32 one-hot rows (N, number_classes) (numpy or torch in, same kind out).

    Training feeds class indices to `cross_entropy`, which equals categorical cross-entropy on these rows.
    """
    if isinstance(vector, torch.Tensor):
        return torch.nn.functional.one_hot(vector.long(), number_classes).to(torch.float32)
    labels = np.asarray(vector, dtype=np.int64).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= number_classes):
        raise ValueError(f"labels must lie in [0, {number_classes}), got {labels.min()}..{labels.max()}")
    return np.eye(number_classes, dtype=np.float32)[labels]


def keras_validation_split(count: int, val_split: float) -> int:
    """Index where validation starts: Keras keeps the LAST `val_split` fraction, taken before shuffling."""
    return math.floor(count * (1.0 - val_split))


def epoch_permutation(count: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle of one epoch, a pure function of (seed, epoch) so a resumed run reshuffles identically."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator)


class TensorBatches:
    """Batches of (uint8 images, labels) cut from tensors that already live on the device.

    Shuffled loaders draw a new permutation each time they are iterated (`epoch()` is asked then) and, under DDP,
    keep every `world`-th index from `rank` on (padded like `DistributedSampler` so every rank runs the same number
    of steps): with a per-process batch of B/world, step i of all ranks together covers exactly the B images of step
    i of a single-process run with batch B.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world: int = 1,
        augment: BatchAugmenter | None = None,
    ) -> None:
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.shuffle, self.seed, self.epoch, self.rank, self.world = shuffle, seed, epoch, rank, world
        self.augment = augment

    def _indices(self, epoch: int) -> torch.Tensor | None:
        if not self.shuffle:
            return None
        order = epoch_permutation(len(self.labels), self.seed, epoch)
        if self.world > 1:
            per_rank = math.ceil(len(order) / self.world)
            order = torch.cat([order, order[: per_rank * self.world - len(order)]])[self.rank :: self.world]
        return order.to(self.labels.device)

    def _count(self) -> int:
        n = len(self.labels)
        return math.ceil(n / self.world) if self.shuffle and self.world > 1 else n

    def __len__(self) -> int:
        return math.ceil(self._count() / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch()
        order = self._indices(epoch)
        for step, start in enumerate(range(0, self._count(), self.batch_size)):
            if order is None:
                yield (
                    self.images[start : start + self.batch_size],
                    self.labels[start : start + self.batch_size],
                )
                continue
            index = order[start : start + self.batch_size]
            images = self.images[index]
            if self.augment:
                images = self.augment(images, epoch, step, self.rank)
            yield images, self.labels[index]


class InMemoryDataModule(L.LightningDataModule):
    """Base for image-classification datasets small enough to keep whole in (device) memory.

    Subclasses set `spec` (shape, classes, counts) and `sources` (the file layouts it can be read from,
    in order of preference); everything else - splitting, batching, scaling - is shared.
    """

    spec: ClassVar[ImageSetSpec]
    sources: ClassVar[Sequence[Source]]
    # Evaluation batches stay small: a 1,000-image batch of the pooling net holds ~400 MiB of activations on CPU.
    eval_batch_size: ClassVar[int] = 256

    def __init__(
        self,
        data_dir: str | Path | None = None,
        batch_size: int = 128,
        val_split: float = 0.2,
        subset: int | None = None,
        seed: int = 0,
        download: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 < val_split < 1.0:
            raise UsageError(f"--val-split must be between 0 and 1 (exclusive), got {val_split}")
        if batch_size < 1:
            raise UsageError(f"--batch-size must be a positive integer, got {batch_size}")
        if subset is not None and subset < 2:
            raise UsageError(f"--subset must be an integer of at least 2, got {subset}")
        self.data_dir = default_data_dir(data_dir)
        self.batch_size, self.val_split, self.subset, self.seed, self.download = (
            batch_size,
            val_split,
            subset,
            seed,
            download,
        )
        self.source = ""
        self.files: tuple[Path, ...] = ()
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._arrays: ImageArrays | None = None
        self.augmenter: BatchAugmenter | None = None

    def augment_training_set(self, steps: Sequence[Augmentation]) -> None:
        """Apply `steps` (augmentation plugins) to every training batch, drawn from this run's seed; () for none."""
        self.augmenter = BatchAugmenter(steps, self.seed) if steps else None

    # -- facts the model and the report need ------------------------------------------------------------
    @classmethod
    def input_shape(cls) -> tuple[int, int, int]:
        """(channels, height, width) of one image as the network sees it."""
        return (cls.spec.channels, cls.spec.height, cls.spec.width)

    @classmethod
    def num_classes(cls) -> int:
        return cls.spec.num_classes

    @classmethod
    def class_names(cls) -> list[str]:
        return list(cls.spec.class_names) or [str(i) for i in range(cls.spec.num_classes)]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images NCHW, labels) of "train", "val" or "test", as they live on the device after `setup`."""
        return self._splits[name]

    def split_sizes(self) -> dict[str, int]:
        return {name: len(labels) for name, (_, labels) in self._splits.items()}

    # -- Lightning hooks --------------------------------------------------------------------------------
    def load_arrays(self) -> ImageArrays:
        """The validated arrays, read (or downloaded) once per process (`cnnkit.data.cache`), until `setup`."""
        if self._arrays is None:
            arrays = load_cached(self.spec, self.sources, self.data_dir, download=self.download)
            self.split_points(len(arrays.y_train))  # refuse a bad --subset/--val-split before any work
            self.source, self.files, self._arrays = arrays.source, arrays.files, arrays
        return self._arrays

    def prepare_data(self) -> None:
        if not any(source.present(self.data_dir) for source in self.sources):
            self.load_arrays()  # downloads (on one process only) or explains what is missing

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        arrays = self.load_arrays()
        self._arrays = None  # the tensors below replace them
        used, cut = self.split_points(len(arrays.y_train))
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        x_train, y_train, x_test, y_test = device_tensors(arrays, device)  # views below: nothing copied per run
        self._splits = {
            "train": (x_train[:cut], y_train[:cut]),
            "val": (x_train[cut:used], y_train[cut:used]),
            "test": (x_test, y_test),
        }

    def split_points(self, count: int) -> tuple[int, int]:
        """(images used, where validation starts) for `count` training images, after --subset; checks both."""
        used = count if self.subset is None else self.subset
        if used > count:
            raise UsageError(f"--subset {self.subset} is larger than the {count} training images")
        cut = keras_validation_split(used, self.val_split)
        if cut < 1 or cut >= used:
            raise UsageError(
                f"--val-split {self.val_split} of {used} images leaves an empty training or validation set"
            )
        return used, cut

    def train_dataloader(self) -> TensorBatches:
        trainer = self.trainer
        if trainer is None:
            return TensorBatches(
                *self._splits["train"], self.batch_size, shuffle=True, seed=self.seed, augment=self.augmenter
            )
        return TensorBatches(
            *self._splits["train"],
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            epoch=lambda: trainer.current_epoch,
            rank=trainer.global_rank,
            world=trainer.world_size,
            augment=self.augmenter,
        )

    def val_dataloader(self) -> TensorBatches:
        # Every process evaluates the whole (small) split: exact figures, no padding, no gather.
        return TensorBatches(*self._splits["val"], max(self.eval_batch_size, self.batch_size))

    def test_dataloader(self) -> TensorBatches:
        return TensorBatches(*self._splits["test"], max(self.eval_batch_size, self.batch_size))

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        return normalize_images(images), labels
