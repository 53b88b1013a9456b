"""A run's test images read back from the data files it names (config.json's `data` record), for galleries.

A run keeps its test predictions by test-set index, not the images. Where the files it was trained from are in the
data directory (the same names and, where recorded, the same SHA-256) and their test labels are the run's, the
images at those indices are the ones it saw; otherwise there is nothing to show. Only numpy is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.data.formats import ImageSetSpec, Source, file_digest, load_image_set
from cnnkit.errors import DataError


def recorded_files(record: Mapping[str, Any]) -> dict[str, str]:
    """File name -> SHA-256 ('' when not recorded) of a config.json `data` record; older records name the source."""
    files = record.get("files") or []
    named = {str(f.get("name", "")): str(f.get("sha256") or "") for f in files if isinstance(f, Mapping)}
    source = str(record.get("source") or "").replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return {k: v for k, v in named.items() if k} or ({source: ""} if source else {})


def recorded_test_images(
    spec: ImageSetSpec,
    sources: Sequence[Source],
    data_dir: Path,
    record: Mapping[str, Any],
    y_true: np.ndarray,
    indices: Sequence[int],
) -> np.ndarray | None:
    """The uint8 test images (N, H, W, C) at `indices`, read from the files `record` names in `data_dir`; None when
    they are absent or differ (another name, another SHA-256, other test labels). Nothing is downloaded."""
    wanted = recorded_files(record)
    if not wanted or not any(source.present(Path(data_dir)) for source in sources):
        return None
    try:
        arrays = load_image_set(spec, sources, Path(data_dir), download=False)
    except DataError:
        return None
    read = {path.name: path for path in arrays.files}
    if not set(wanted) <= set(read):
        return None
    if any(digest and file_digest(read[name]) != digest for name, digest in wanted.items()):
        return None
    if arrays.y_test.shape != np.shape(y_true) or not np.array_equal(arrays.y_test, y_true):
        return None
    return np.asarray(arrays.x_test[np.asarray(indices, dtype=np.int64)], dtype=np.uint8)
