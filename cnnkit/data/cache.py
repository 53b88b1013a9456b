"""Datasets kept by the process that loaded them, so its next run starts training without reading files again.

A job worker (and a study trained one run at a time in one process) trains many runs: reading and validating a
CIFAR-10 file, turning it into NCHW tensors and hashing it for config.json each cost about a second. Here each
dataset is read once per process, keyed by dataset, data directory and the files read (size and modification time:
a replaced file is read again), and kept as whole uint8 tensors, on the CPU and on each device a run asked for (on a
GPU the device copy stays there). A run's `--subset` and validation split are views of those tensors: nothing is
copied per run, and nothing in a run writes to them (batches are indexed or converted into new tensors).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from cnnkit.data.formats import ImageArrays, ImageSetSpec, Source, file_digest, load_image_set

MAX_DATASETS = 4  # the assignment needs two; a few more for plugins, without holding every dataset ever read

Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # x_train, y_train, x_test, y_test


@dataclass
class _Entry:
    arrays: ImageArrays
    stamp: tuple[tuple[str, int, int], ...]
    tensors: dict[str, Tensors] = field(default_factory=dict)  # by device


_datasets: OrderedDict[tuple[str, str, int], _Entry] = OrderedDict()
_digests: dict[tuple[str, int, int], str] = {}


def _stamp(files: Sequence[Path]) -> tuple[tuple[str, int, int], ...] | None:
    try:
        stats = [(str(path), os.stat(path)) for path in files]
    except OSError:
        return None
    return tuple((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


def load_cached(spec: ImageSetSpec, sources: Sequence[Source], data_dir: Path, download: bool = True) -> ImageArrays:
    """`formats.load_image_set`, read once per process while its files stay unchanged.

    The returned images are NHWC numpy views of the cached NCHW tensors (no second copy is kept)."""
    present = next((i for i, source in enumerate(sources) if source.present(data_dir)), -1)
    key = (spec.name, str(Path(data_dir).resolve()), present)
    entry = _datasets.get(key)
    if entry is not None and _stamp(entry.arrays.files) == entry.stamp:
        _datasets.move_to_end(key)
        return entry.arrays
    arrays = load_image_set(spec, sources, data_dir, download=download)
    cpu = _to_tensors(arrays)
    arrays = replace(arrays, x_train=_nhwc(cpu[0]), y_train=cpu[1].numpy(), x_test=_nhwc(cpu[2]), y_test=cpu[3].numpy())
    stamp = _stamp(arrays.files)
    if present >= 0 and stamp is not None:  # after a download the key would name no source: not kept
        _datasets[key] = _Entry(arrays, stamp, {"cpu": cpu})
        while len(_datasets) > MAX_DATASETS:
            _datasets.popitem(last=False)
    return arrays


def device_tensors(arrays: ImageArrays, device: torch.device) -> Tensors:
    """(x_train NCHW uint8, y_train int64, x_test, y_test) of `arrays` on `device`, kept when they are cached."""
    entry = next((e for e in _datasets.values() if e.arrays is arrays), None)
    if entry is None:
        return tuple(tensor.to(device) for tensor in _to_tensors(arrays))  # type: ignore[return-value]
    if str(device) not in entry.tensors:
        entry.tensors[str(device)] = tuple(t.to(device) for t in entry.tensors["cpu"])  # type: ignore[assignment]
    return entry.tensors[str(device)]


def cached_digest(path: Path) -> str:
    """SHA-256 of a data file (for config.json), hashed once per process while the file stays unchanged."""
    stamp = _stamp([path])
    if stamp is None:
        return file_digest(path)
    if stamp[0] not in _digests:
        _digests[stamp[0]] = file_digest(path)
    return _digests[stamp[0]]


def clear() -> None:
    """Forget every cached dataset (tests; memory)."""
    _datasets.clear()
    _digests.clear()


def _to_tensors(arrays: ImageArrays) -> Tensors:
    """HWC uint8 numpy -> NCHW uint8 tensors and int64 labels (scaling to float happens per batch)."""

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))

    return images(arrays.x_train), labels(arrays.y_train), images(arrays.x_test), labels(arrays.y_test)


def _nhwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy()
