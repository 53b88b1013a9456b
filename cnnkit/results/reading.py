"""Reading a run directory's files back: soundly, with one line saying what is wrong with a damaged one."""

from __future__ import annotations

import csv
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.errors import DataError, RunError
from cnnkit.results.files import RESULT, RunFiles
from cnnkit.storage.damage import note

RESULT_KEYS = ("test_loss", "test_accuracy", "history")
TRIAL_KEYS = ("trial", "history")  # a search trial's result.json: its state and value, validation figures only
HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, raising DataError for unreadable or malformed files."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path} does not hold a JSON object")
    return data


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """A JSON object, or {} when the file is absent, unreadable or not an object (for readers that only look)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def json_problem(path: Path, required: tuple[str, ...] = ()) -> str | None:
    """Why `path` is not a sound JSON object with `required` keys, or None when it is."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        return exc.strerror or str(exc)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        return f"not valid JSON ({exc})"
    if not isinstance(data, dict):
        return "not a JSON object"
    lacking = [key for key in required if key not in data]
    return f"lacks {', '.join(lacking)}" if lacking else None


def result_problem(run_dir: Path) -> str | None:
    """Why the run's result.json is not sound (absent included), or None when it is."""
    path = RunFiles(run_dir).result
    return "absent" if not path.exists() else json_problem(path, RESULT_KEYS)


def finished_result(
    run_dir: Path, quiet: bool = False, required: tuple[str, ...] = RESULT_KEYS
) -> dict[str, Any] | None:
    """The run's result.json when it is sound; None when absent or damaged (then the run counts as unfinished)."""
    path = RunFiles(run_dir).result
    if not path.exists():
        return None
    problem = json_problem(path, required)
    if problem is None:
        return json.loads(path.read_bytes())
    if not quiet:
        note(f"{path} is damaged ({problem}): {run_dir.name} counts as unfinished and is trained to its end again")
    return None


def finished_trial(run_dir: Path, quiet: bool = False) -> dict[str, Any] | None:
    """A search trial's result.json when it is sound (a trial's record: no test figures); None otherwise."""
    return finished_result(run_dir, quiet, TRIAL_KEYS)


def has_started(run_dir: Path) -> bool:
    """True when a run has begun training: its config.json or its last checkpoint is there."""
    files = RunFiles(run_dir)
    return files.config.exists() or files.last_checkpoint.exists()


def stored_settings(run_dir: Path) -> dict[str, Any] | None:
    """The `run` record of a run directory's config.json (None without one); a RunError when it is unreadable."""
    path = RunFiles(run_dir).config
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text()).get("run", {})
    except (OSError, ValueError) as exc:
        raise RunError(f"{path} is unreadable ({exc}); pass --fresh to start this run over") from exc


def epochs_logged(run_dir: Path) -> int:
    """Number of epoch rows in metrics.csv (0 when absent or unreadable)."""
    try:
        with RunFiles(run_dir).metrics.open(newline="", encoding="utf-8") as handle:
            return sum(1 for _ in csv.DictReader(handle))
    except OSError:
        return 0


def epoch_curves(run_dir: Path, history: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    """The run's curves: result.json's history, plus any further per-epoch column of metrics.csv (e.g. lr)."""
    curves = {key: list(values) for key, values in history.items() if isinstance(values, list)}
    epochs = len(curves.get("val_loss", []))
    try:
        with RunFiles(run_dir).metrics.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        rows = []
    if rows and len(rows) == epochs:
        for column in rows[0]:
            if column != "epoch" and column not in curves:
                curves[column] = [_number(row.get(column)) for row in rows]
    return curves


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


@dataclass(frozen=True)
class History:
    """Per-epoch curves of one run (epoch k is index k-1)."""

    train_loss: tuple[float, ...]
    train_accuracy: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_accuracy: tuple[float, ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Sequence[float]]) -> History:
        try:
            curves = {k: tuple(float(v) for v in data[k]) for k in HISTORY_KEYS}
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"history lacks or has a malformed curve: {exc}") from exc
        if len({len(c) for c in curves.values()}) != 1:
            raise DataError("history curves have different lengths")
        return cls(**curves)

    @property
    def epochs(self) -> int:
        return len(self.val_loss)


@dataclass(frozen=True)
class Predictions:
    """Test-set predictions of one run (final weights), in test-set order, and a few misclassified examples.

    `probabilities` (test images x classes, rows summing to 1) and `images_index` (the gallery images' positions
    in the test set) are kept by runs trained since they were added; older runs have None."""

    y_true: np.ndarray
    y_pred: np.ndarray
    images: np.ndarray
    images_true: np.ndarray
    images_pred: np.ndarray
    class_names: tuple[str, ...]
    probabilities: np.ndarray | None = None
    images_index: np.ndarray | None = None

    @cached_property
    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.y_true, self.y_pred, len(self.class_names))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise DataError("y_true and y_pred differ in shape")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat[: num_classes * num_classes].reshape(num_classes, num_classes)


def load_predictions(run_dir: Path) -> Predictions | None:
    """Read the run's predictions.npz, or None when the file is absent."""
    path = RunFiles(run_dir).predictions
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return Predictions(
                y_true=z["y_true"],
                y_pred=z["y_pred"],
                images=z["misclassified_images"],
                images_true=z["misclassified_true"],
                images_pred=z["misclassified_pred"],
                class_names=tuple(str(c) for c in z["class_names"]),
                probabilities=z["probabilities"] if "probabilities" in z.files else None,
                images_index=z["misclassified_index"] if "misclassified_index" in z.files else None,
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} is damaged ({exc}); delete it and the {RESULT} beside it, then run "
            "the study again: the run is evaluated again from its last checkpoint"
        ) from exc
