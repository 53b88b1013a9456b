"""Analysis of a study's result files: fit diagnostics, seed statistics, comparisons and confusion matrices.

Everything here is a pure function of the files a study writes (study.json and, per run, config.json,
metrics.csv, result.json, predictions.npz); nothing is trained or imported from torch.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.errors import DataError, UsageError
from cnnkit.storage.damage import RESULT_KEYS, json_problem

# The overfitting rule. A run overfits *strongly* when, at the end, its validation loss stands at least
# STRONG_VAL_LOSS_RISE (relative) above its minimum AND train accuracy exceeds validation accuracy by at least
# STRONG_ACC_GAP. It overfits *mildly* when either the validation loss rose at least MILD_VAL_LOSS_RISE above
# its minimum or the accuracy gap is at least MILD_ACC_GAP. Otherwise: none. With fewer than
# MIN_VERDICT_EPOCHS epochs there is no trend to judge: the verdict is "too_early".
STRONG_VAL_LOSS_RISE = 0.10
STRONG_ACC_GAP = 0.05
MILD_VAL_LOSS_RISE = 0.02
MILD_ACC_GAP = 0.02
MIN_VERDICT_EPOCHS = 3
VERDICTS = ("none", "mild", "strong", "too_early")

CONFIDENCE = 0.95
HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
# Settings that make two runs "the same configuration"; runs equal on all of these differ only in seed.
CONFIG_KEYS = ("dataset", "architecture", "optimizer", "preset", "epochs", "batch_size", "val_split", "subset")
# name -> True when higher is better
METRICS = {"test_accuracy": True, "test_loss": False, "best_test_accuracy": True, "best_test_loss": False}

# Two-sided 95 % critical values of Student's t by degrees of freedom; between entries the next lower df is used.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
_T95.update({11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101})
_T95.update({19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056})
_T95.update({27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980})
_Z95 = 1.960


# ----------------------------------------------------------------------------------------------- per run
@dataclass(frozen=True)
class History:
    """Per-epoch curves of one run (epoch k is index k-1)."""

    train_loss: tuple[float, ...]
    train_accuracy: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_accuracy: tuple[float, ...]

    @classmethod
    def from_mapping(cls, data: dict[str, Sequence[float]]) -> History:
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
class Fit:
    """Fit diagnostics of one history: best epoch, generalization gaps and the overfitting verdict."""

    best_epoch: int  # 1-based epoch of the lowest validation loss
    val_loss_min: float
    val_loss_final: float
    val_loss_rise: float  # final - min
    val_loss_rise_rel: float  # (final - min) / min
    final_loss_gap: float  # val_loss - train_loss, last epoch
    final_acc_gap: float  # train_accuracy - val_accuracy, last epoch
    best_loss_gap: float
    best_acc_gap: float
    verdict: str


def best_epoch(val_loss: Sequence[float]) -> int:
    """1-based epoch with the lowest validation loss (the first one on ties)."""
    if not val_loss:
        raise DataError("empty validation-loss history")
    return int(np.argmin(np.asarray(val_loss, dtype=float))) + 1


def overfitting_verdict(val_loss_rise_rel: float, acc_gap: float) -> str:
    """Apply the overfitting rule (see the module constants) to a relative val-loss rise and an accuracy gap."""
    if val_loss_rise_rel >= STRONG_VAL_LOSS_RISE and acc_gap >= STRONG_ACC_GAP:
        return "strong"
    if val_loss_rise_rel >= MILD_VAL_LOSS_RISE or acc_gap >= MILD_ACC_GAP:
        return "mild"
    return "none"


def diagnose(history: History) -> Fit:
    """Compute the fit diagnostics of one run's history."""
    best = best_epoch(history.val_loss)
    vmin, vfin = history.val_loss[best - 1], history.val_loss[-1]
    rise = vfin - vmin
    rise_rel = rise / vmin if vmin > 0 else (math.inf if rise > 0 else 0.0)
    gap_acc = history.train_accuracy[-1] - history.val_accuracy[-1]
    return Fit(
        best_epoch=best,
        val_loss_min=vmin,
        val_loss_final=vfin,
        val_loss_rise=rise,
        val_loss_rise_rel=rise_rel,
        final_loss_gap=vfin - history.train_loss[-1],
        final_acc_gap=gap_acc,
        best_loss_gap=vmin - history.train_loss[best - 1],
        best_acc_gap=history.train_accuracy[best - 1] - history.val_accuracy[best - 1],
        verdict=overfitting_verdict(rise_rel, gap_acc) if history.epochs >= MIN_VERDICT_EPOCHS else "too_early",
    )


@dataclass(frozen=True)
class Predictions:
    """Test-set predictions of one run (final weights) and a few misclassified examples."""

    y_true: np.ndarray
    y_pred: np.ndarray
    images: np.ndarray
    images_true: np.ndarray
    images_pred: np.ndarray
    class_names: tuple[str, ...]

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


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each true class (NaN for a class without test examples)."""
    totals = confusion.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / totals, np.nan)


def load_predictions(path: Path) -> Predictions | None:
    """Read predictions.npz, or None when the file is absent."""
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
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} is damaged ({exc}); delete it and the result.json beside it, then run the study again: "
            "the run is evaluated again from its last checkpoint"
        ) from exc


def layer_macs(layer: dict[str, Any]) -> int:
    """Multiply-adds of a Conv/Dense layer from its Keras-style summary row (weights x output positions)."""
    kind, shape, params = str(layer.get("type", "")), layer.get("output_shape") or [], int(layer.get("params", 0))
    if not params or not shape or not any(k in kind for k in ("Conv", "Dense", "Linear")):
        return 0
    units = int(shape[-1])
    positions = math.prod(int(d) for d in shape[1:-1] if d is not None)
    return (params - units) * positions


# ----------------------------------------------------------------------------------------------- study
@dataclass
class Run:
    """One complete run: its resolved config, its result and derived diagnostics."""

    dir: str
    path: Path
    config: dict[str, Any]
    result: dict[str, Any]
    reference: dict[str, Any] | None = None

    def __getitem__(self, key: str) -> Any:
        """A setting or result by name (result first); KeyError when the run has neither."""
        for source in (self.result, self.config):
            if key in source:
                return source[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    @cached_property
    def history(self) -> History:
        return History.from_mapping(self.result.get("history") or {})

    @cached_property
    def fit(self) -> Fit:
        return diagnose(self.history)

    @cached_property
    def predictions(self) -> Predictions | None:
        return load_predictions(self.path / "predictions.npz")

    @property
    def config_key(self) -> tuple[Any, ...]:
        return tuple(self.get(k) for k in CONFIG_KEYS)


@dataclass(frozen=True)
class MissingRun:
    """A run listed in study.json (or started on disk) without a result.json."""

    dir: str
    spec: dict[str, Any]
    epochs_done: int


@dataclass
class Study:
    name: str
    description: str
    path: Path
    runs: list[Run]
    missing: list[MissingRun] = field(default_factory=list)
    listed: int = 0  # runs named in study.json

    @cached_property
    def groups(self) -> list[Group]:
        return group_runs(self.runs)


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, raising DataError for unreadable or malformed files."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path} does not hold a JSON object")
    return data


def _metrics_rows(path: Path) -> int:
    """Number of epoch rows in metrics.csv (0 when absent or unreadable)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return sum(1 for _ in csv.DictReader(fh))
    except OSError:
        return 0


def _load_run(path: Path, entry: dict[str, Any]) -> Run | MissingRun:
    config = read_json(path / "config.json") if (path / "config.json").is_file() else {}
    if not (path / "result.json").is_file() or json_problem(path / "result.json", RESULT_KEYS):
        return MissingRun(path.name, {**config, **entry}, _metrics_rows(path / "metrics.csv"))  # damaged: unfinished
    result = read_json(path / "result.json")
    run = Run(path.name, path, {**entry, **config}, result, entry.get("reference") or None)
    _ = run.fit  # validate the history early, as a DataError
    return run


def load_study(path: Path) -> Study:
    """Load every run of a study directory: runs listed in study.json and run directories found on disk."""
    path = Path(path)
    try:
        meta = read_json(path / "study.json") if (path / "study.json").is_file() else {}
    except DataError as exc:
        raise DataError(f"{exc}; running the study again (cnnkit run --study ...) rewrites it") from exc
    found = sorted(p.name for p in path.iterdir() if (p / "config.json").is_file()) if path.is_dir() else []
    if not meta and not found:
        raise UsageError(f"{path} is not a study directory: no study.json and no run directories with config.json")
    entries = [e for e in meta.get("runs", []) if isinstance(e, dict) and e.get("dir")]
    listed = {e["dir"] for e in entries}
    entries += [{"dir": d} for d in found if d not in listed]
    runs: list[Run] = []
    missing: list[MissingRun] = []
    for entry in entries:
        loaded = _load_run(path / entry["dir"], entry)
        (runs if isinstance(loaded, Run) else missing).append(loaded)
    return Study(
        name=str(meta.get("name") or path.name),
        description=str(meta.get("description") or ""),
        path=path,
        runs=runs,
        missing=missing,
        listed=len(listed),
    )


# ----------------------------------------------------------------------------------------------- seeds
@dataclass(frozen=True)
class SeedStats:
    """Mean, sample std (ddof=1) and 95 % t-interval half-width over seeds (std/half-width None for n=1)."""

    n: int
    mean: float
    std: float | None
    half_width: float | None


def t_critical(df: float) -> float:
    """Two-sided 95 % critical value of Student's t (conservative: the next lower tabulated df)."""
    if df < 1:
        raise ValueError("degrees of freedom must be >= 1")
    if math.isinf(df):
        return _Z95
    return _T95[max(k for k in _T95 if k <= df)]


def seed_stats(values: Iterable[float]) -> SeedStats:
    """Statistics of one metric over the seeds of a configuration."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("no values")
    if x.size == 1:
        return SeedStats(1, float(x[0]), None, None)
    std = float(x.std(ddof=1))
    return SeedStats(int(x.size), float(x.mean()), std, t_critical(x.size - 1) * std / math.sqrt(x.size))


def welch_half_width(a: SeedStats, b: SeedStats) -> float | None:
    """95 % half-width of the difference of two means (Welch); None when either side has one seed."""
    if a.std is None or b.std is None:
        return None
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    se2 = va + vb
    denom = va**2 / (a.n - 1) + vb**2 / (b.n - 1)
    df = se2**2 / denom if denom > 0 else math.inf
    return t_critical(df) * math.sqrt(se2)


@dataclass
class Group:
    """Runs that differ only in seed."""

    runs: list[Run]

    def __getitem__(self, key: str) -> Any:
        return self.runs[0][key]

    @property
    def multi_seed(self) -> bool:
        return len(self.runs) > 1

    @property
    def key(self) -> tuple[Any, ...]:
        return self.runs[0].config_key

    @property
    def seeds(self) -> list[int]:
        return [r.get("seed") for r in self.runs]

    def stats(self, metric: str) -> SeedStats:
        return seed_stats(float(r[metric]) for r in self.runs)


def group_runs(runs: Iterable[Run]) -> list[Group]:
    """Group runs by configuration, in order of first appearance."""
    groups: dict[tuple[Any, ...], Group] = {}
    for run in runs:
        groups.setdefault(run.config_key, Group([])).runs.append(run)
    return list(groups.values())


# ----------------------------------------------------------------------------------------------- comparisons
@dataclass(frozen=True)
class Comparison:
    """Ahead vs behind on one metric. status: 'clear' (beyond seed noise), 'noise' or 'single_seed'."""

    ahead: Group
    behind: Group
    metric: str
    diff: float  # ahead.mean - behind.mean (negative for losses)
    half_width: float | None
    status: str


def compare(a: Group, b: Group, metric: str) -> Comparison:
    """Compare two configurations on a metric; a gap within the Welch 95 % interval is called noise, not a win."""
    sa, sb = a.stats(metric), b.stats(metric)
    higher = METRICS[metric]
    if (sa.mean < sb.mean) == higher and sa.mean != sb.mean:
        a, b, sa, sb = b, a, sb, sa
    diff = sa.mean - sb.mean
    hw = welch_half_width(sa, sb)
    status = "single_seed" if hw is None else ("clear" if abs(diff) > hw else "noise")
    return Comparison(a, b, metric, diff, hw, status)


@dataclass(frozen=True)
class Ranking:
    """Configurations equal except on `vary`, best first on `metric`, with adjacent comparisons."""

    vary: str
    metric: str
    groups: list[Group]
    steps: list[Comparison]

    @property
    def shared(self) -> dict[str, Any]:
        return {k: self.groups[0][k] for k in CONFIG_KEYS if k != self.vary}

    @property
    def decided(self) -> bool:
        """True when the leader is ahead of the runner-up beyond seed noise."""
        return self.steps[0].status == "clear"


def rankings(groups: Sequence[Group], vary: str, metric: str) -> list[Ranking]:
    """Rank every set of >= 2 configurations that differ only in `vary` (e.g. the optimizers of one net)."""
    families: dict[tuple[Any, ...], list[Group]] = {}
    idx = CONFIG_KEYS.index(vary)
    for g in groups:
        families.setdefault(g.key[:idx] + g.key[idx + 1 :], []).append(g)
    out = []
    sign = -1.0 if METRICS[metric] else 1.0
    for members in families.values():
        if len(members) < 2:
            continue
        ordered = sorted(members, key=lambda g: sign * g.stats(metric).mean)
        steps = [compare(x, y, metric) for x, y in itertools.pairwise(ordered)]
        out.append(Ranking(vary, metric, ordered, steps))
    return out


def still_improving(values: Sequence[float], window: int = 3, threshold: float = 0.005) -> bool:
    """True when a curve (e.g. val accuracy) rose more than `threshold` over its last `window` epochs."""
    return len(values) > window and values[-1] - values[-1 - window] > threshold
