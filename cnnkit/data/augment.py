"""Training-set augmentation as batched tensor operations on the device where the dataset already lives.

Each augmentation plugin is a function `(uint8 images NCHW, generator) -> images`. `BatchAugmenter` chains the
run's augmentations and seeds one generator per batch from (run seed, epoch, step, rank), so the random draws are a
pure function of where training is: a run is reproducible and a resumed one draws exactly what it would have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class BatchAugmenter:
    """Applies `steps` in order to each training batch, with random numbers drawn from a per-batch generator."""

    def __init__(self, steps: Sequence[Augmentation], seed: int) -> None:
        self.steps, self.seed = tuple(steps), seed

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __call__(self, images: torch.Tensor, epoch: int, step: int, rank: int = 0) -> torch.Tensor:
        generator = torch.Generator(device=images.device)
        generator.manual_seed(batch_seed(self.seed, epoch, step, rank))
        for operation in self.steps:
            images = operation(images, generator)
        return images


def batch_seed(seed: int, epoch: int, step: int, rank: int = 0) -> int:
    """A distinct 63-bit seed for every (run seed, epoch, step, rank)."""
    return ((((seed * 1_000_003 + epoch) * 1_000_033 + step) * 1_009 + rank) * 2_654_435_761) % (2**63 - 1)
