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
ABSENT = "absent"  # result_problem of a run without result.json
HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
# The clean training figures (eval mode, no augmentation, on as many training images as validation has), of runs
# trained since they were added: optional in every reader, absent from older runs.
TRAIN_EVAL_KEYS = ("train_eval_loss", "train_eval_accuracy")


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


def result_problem(run_dir: Path, required: tuple[str, ...] = RESULT_KEYS) -> str | None:
    """Why the run's result.json is not sound (absent included), or None when it is: it must be a JSON object
    with every key of `required` (TRIAL_KEYS for a search trial's), every field of RESULT_FIELDS of its type, and
    a history of equally long numeric curves."""
    path = RunFiles(run_dir).result
    if not path.exists():
        return ABSENT
    problem = json_problem(path, required)
    if problem is not None:
        return problem
    return record_problem(json.loads(path.read_bytes()), TRIAL_FIELDS if required == TRIAL_KEYS else RESULT_FIELDS)


def record_problem(result: Mapping[str, Any], fields: Mapping[str, tuple[Any, str]] | None = None) -> str | None:
    """Why a result record (result.json's object) has a field of the wrong type (`fields`: RESULT_FIELDS unless
    told), or None when none has."""
    fields = RESULT_FIELDS if fields is None else fields
    wrong = [f"{key} is {_kind(result[key])}, not {what}" for key, (check, what) in fields.items()
             if key in result and not check(result[key])]  # fmt: skip
    history = result.get("history")
    if not isinstance(history, dict):
        wrong.append(f"history is {_kind(history)}, not an object of curves")
    else:
        curves = {key: history.get(key) for key in HISTORY_KEYS}
        bad = [key for key, curve in curves.items() if not isinstance(curve, list) or not all(map(_real, curve))]
        if bad:
            wrong.append(f"history's {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not a list of numbers")
        elif len({len(curve) for curve in curves.values() if isinstance(curve, list)}) > 1:
            wrong.append("history's curves differ in length")
    return "; ".join(wrong) or None


def _real(value: Any) -> bool:
    """A JSON number (NaN included: a diverged run's loss), not a boolean."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fraction(value: Any) -> bool:
    return _real(value) and 0.0 <= value <= 1.0


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _optional(check: Any) -> Any:
    return lambda value: value is None or check(value)


def _kind(value: Any) -> str:
    """How a wrong value reads in a message: `the text 'x'`, `null`, `a list`."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the text {value[:20]!r}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    return repr(value)


# result.json's fields that readers format as numbers: how each is checked when present, and what it must be.
RESULT_FIELDS: dict[str, tuple[Any, str]] = {
    "test_loss": (_real, "a number"),
    "test_accuracy": (_fraction, "a number from 0 to 1"),
    "best_test_loss": (_real, "a number"),
    "best_test_accuracy": (_fraction, "a number from 0 to 1"),
    "best_epoch": (_count, "a whole number"),
    "epochs": (_count, "a whole number"),
    "planned_epochs": (_optional(_count), "a whole number"),
    "stopped_epoch": (_optional(_count), "a whole number"),
    "params": (_optional(_count), "a whole number"),
    "train_seconds": (_optional(_real), "a number"),
    "images_per_second": (_optional(_real), "a number"),
    "test_seconds": (_optional(_real), "a number"),
}
# A search trial's result.json (records.trial_record): its best_epoch is null when every epoch's val_loss is NaN.
TRIAL_FIELDS: dict[str, tuple[Any, str]] = {**RESULT_FIELDS, "best_epoch": (_optional(_count), "a whole number")}


def finished_result(
    run_dir: Path, quiet: bool = False, required: tuple[str, ...] = RESULT_KEYS
) -> dict[str, Any] | None:
    """The run's result.json when it is sound (result_problem); None when absent or damaged (then the run counts
    as unfinished)."""
    problem = result_problem(run_dir, required)
    if problem is None:
        result: dict[str, Any] = json.loads(RunFiles(run_dir).result.read_bytes())
        return result
    if problem != ABSENT and not quiet:
        note(
            f"{RunFiles(run_dir).result} is damaged ({problem}): {run_dir.name} counts as unfinished and is "
            "trained to its end again"
        )
    return None


def finished_trial(run_dir: Path, quiet: bool = False) -> dict[str, Any] | None:
    """A search trial's result.json when it is sound (a trial's record: no test figures); None otherwise."""
    return finished_result(run_dir, quiet, TRIAL_KEYS)


PROGRESS_STAGES = ("training", "testing", "interrupted", "finished")  # progress.json's `stage`


@dataclass(frozen=True)
class StoredProgress:
    """A run's progress.json: its stage (PROGRESS_STAGES: `interrupted` when Ctrl-C stopped it cleanly), the wall
    time of each epoch it trained (training and validation) and of its testing, once tested."""

    stage: str
    epoch_seconds: tuple[float, ...] = ()
    test_seconds: float | None = None

    @property
    def stopped_cleanly(self) -> bool:
        """Stopped by Ctrl-C or SIGTERM at a safe point (its checkpoints kept), not killed with its process."""
        return self.stage == "interrupted"


def read_progress(run_dir: Path) -> StoredProgress | None:
    """The run's progress.json, or None when it has none (runs trained before it was written) or it is unsound."""
    data = read_json_or_empty(RunFiles(run_dir).progress)
    stage, seconds, test = data.get("stage"), data.get("epoch_seconds"), data.get("test_seconds")
    if stage not in PROGRESS_STAGES or not isinstance(seconds, list) or not all(map(_real, seconds)):
        return None
    return StoredProgress(
        str(stage), tuple(float(s) for s in seconds), float(test) if isinstance(test, (int, float)) else None
    )


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
        lost = "its finished result too" if result_problem(run_dir) is None else "its checkpoints"
        raise RunError(f"{path} is unreadable ({exc}); --fresh starts this run over (deleting {lost})") from exc


def epochs_logged(run_dir: Path) -> int:
    """Number of epoch rows in metrics.csv (0 when absent or unreadable)."""
    try:
        with RunFiles(run_dir).metrics.open(newline="", encoding="utf-8") as handle:
            return sum(1 for _ in csv.DictReader(handle))
    except OSError:
        return 0


def epoch_curves(run_dir: Path, history: Mapping[str, Sequence[float | None]]) -> dict[str, list[float]]:
    """The run's curves: result.json's history, plus any further per-epoch column of metrics.csv (e.g. lr).

    An epoch without a figure (null in result.json, e.g. the epochs before a resume of a run that predates the
    clean training figures) reads as NaN."""
    curves = {
        key: [math.nan if value is None else value for value in values]
        for key, values in history.items()
        if isinstance(values, list)
    }
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
    """Per-epoch curves of one run (epoch k is index k-1).

    `train_loss` / `train_accuracy` are the running means of the training batches (train mode, augmented);
    `train_eval_loss` / `train_eval_accuracy` the clean training figures (eval mode, no augmentation, plain
    cross-entropy, a fixed sample of training images as large as the validation split): empty for runs that
    predate them, NaN for an epoch without them."""

    train_loss: tuple[float, ...]
    train_accuracy: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_accuracy: tuple[float, ...]
    train_eval_loss: tuple[float, ...] = ()
    train_eval_accuracy: tuple[float, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Sequence[Any]]) -> History:
        try:
            curves = {k: tuple(float(v) for v in data[k]) for k in HISTORY_KEYS}
            optional = {
                k: tuple(math.nan if v is None else float(v) for v in data[k]) for k in TRAIN_EVAL_KEYS if k in data
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"history lacks or has a malformed curve: {exc}") from exc
        if len({len(c) for c in (*curves.values(), *optional.values())}) != 1:
            raise DataError("history curves have different lengths")
        return cls(**curves, **optional)

    @property
    def has_train_eval(self) -> bool:
        """Whether the run recorded clean training figures (some epoch has them)."""
        return any(not math.isnan(v) for v in self.train_eval_accuracy)

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


# A degenerate run: its test accuracy within this of the majority class's share, or this share of its predictions
# in one class. Such a run learned (next to) nothing, however it ranks among its study's runs.
DEGENERATE_ACCURACY_MARGIN = 0.01
DEGENERATE_ONE_CLASS_SHARE = 0.99


@dataclass(frozen=True)
class Degeneracy:
    """How close a run's test predictions come to one class: the test set's majority class and its share, the
    class the run predicts most and the share of its predictions in it, and its test accuracy."""

    accuracy: float
    majority_class: int
    majority_share: float
    predicted_class: int
    predicted_share: float
    class_names: tuple[str, ...] = ()

    @property
    def near_majority(self) -> bool:
        """Test accuracy within DEGENERATE_ACCURACY_MARGIN (1 point) of the majority class's share."""
        return abs(self.accuracy - self.majority_share) <= DEGENERATE_ACCURACY_MARGIN + 1e-9

    @property
    def one_class(self) -> bool:
        """At least DEGENERATE_ONE_CLASS_SHARE (99 %) of the predictions in one class."""
        return self.predicted_share >= DEGENERATE_ONE_CLASS_SHARE

    @property
    def degenerate(self) -> bool:
        return self.near_majority or self.one_class

    def name(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)

    @property
    def why(self) -> str:
        """One English clause for the console (the report words it in its own language); '' when not degenerate."""
        if self.one_class:
            return f"{self.predicted_share:.1%} of its test predictions are class {self.name(self.predicted_class)}"
        if self.near_majority:
            return (
                f"its test accuracy {self.accuracy:.2%} is within 1 point of the majority class's share of the test "
                f"set ({self.name(self.majority_class)}: {self.majority_share:.2%})"
            )
        return ""


def degeneracy(predictions: Predictions, test_accuracy: float | None = None) -> Degeneracy:
    """How degenerate a run's test predictions are (`Degeneracy.degenerate`); `test_accuracy` defaults to the
    accuracy of the predictions themselves (result.json's `test_accuracy` is the same figure)."""
    y_true = np.asarray(predictions.y_true, dtype=np.int64)
    y_pred = np.asarray(predictions.y_pred, dtype=np.int64)
    if y_true.size == 0:
        raise DataError("predictions hold no test images")
    classes = max(len(predictions.class_names), int(y_true.max()) + 1, int(y_pred.max()) + 1)
    truth, predicted = np.bincount(y_true, minlength=classes), np.bincount(y_pred, minlength=classes)
    accuracy = float(np.mean(y_true == y_pred)) if test_accuracy is None else float(test_accuracy)
    return Degeneracy(
        accuracy=accuracy,
        majority_class=int(truth.argmax()),
        majority_share=float(truth.max() / y_true.size),
        predicted_class=int(predicted.argmax()),
        predicted_share=float(predicted.max() / y_pred.size),
        class_names=predictions.class_names,
    )


def run_degeneracy(run_dir: Path, result: Mapping[str, Any] | None = None) -> Degeneracy | None:
    """`degeneracy` of a finished run directory's predictions.npz, or None without one (or when it is damaged)."""
    try:
        predictions = load_predictions(run_dir)
    except DataError:
        return None
    if predictions is None or predictions.y_true.size == 0:
        return None
    accuracy = (result or {}).get("test_accuracy")
    return degeneracy(predictions, accuracy if _fraction(accuracy) else None)


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
