"""The built-in augmentations: batched tensor operations on uint8 images (N, C, H, W), on their own device.

Every random number comes from the generator cnnkit passes in (seeded per batch from the run's seed), so a run is
reproducible and resumes bit-exactly. No per-image Python work: each operation is a few whole-batch tensor calls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CROP_PADDING = 4  # the classic CIFAR-10 recipe: pad by 4 pixels, crop back to the original size


def _uniform(count: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(count, device=generator.device, generator=generator)


def _offsets(count: int, high: int, generator: torch.Generator) -> torch.Tensor:
    """`count` integers drawn uniformly from [0, high)."""
    return torch.randint(0, high, (count,), device=generator.device, generator=generator)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flipped = _uniform(images.shape[0], generator) < 0.5
    return torch.where(flipped[:, None, None, None], images.flip(-1), images)


def random_crop(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pad each image with `CROP_PADDING` black pixels on every side and cut a random window of the original size."""
    n, c, h, w = images.shape
    pad = CROP_PADDING
    padded = F.pad(images, (pad, pad, pad, pad))
    rows = _offsets(n, 2 * pad + 1, generator)[:, None] + torch.arange(h, device=images.device)
    cols = _offsets(n, 2 * pad + 1, generator)[:, None] + torch.arange(w, device=images.device)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def cutout(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Blank one square of a quarter of the image side per image, centred anywhere (clipped at the borders).

    DeVries & Taylor (2017), "Improved regularization of convolutional neural networks with cutout".
    """
    n, _, h, w = images.shape
    size = max(1, min(h, w) // 4)
    top = _offsets(n, h, generator)[:, None] - size // 2
    left = _offsets(n, w, generator)[:, None] - size // 2
    ys = torch.arange(h, device=images.device)[None, :]
    xs = torch.arange(w, device=images.device)[None, :]
    inside_rows = (ys >= top) & (ys < top + size)
    inside_cols = (xs >= left) & (xs < left + size)
    hole = inside_rows[:, :, None] & inside_cols[:, None, :]
    return images.masked_fill(hole[:, None, :, :], 0)
