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
from cnnkit.training.config import DEFAULTS, IDENTITY_KEYS, LEVERS

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
# Training levers and their values when off; result files written before them lack the keys.
LEVER_DEFAULTS: dict[str, Any] = {s.name: s.default for s in LEVERS}
LEVER_KEYS = tuple(LEVER_DEFAULTS)
# Settings that make two runs "the same configuration"; runs equal on all of these differ only in seed.
CONFIG_KEYS = IDENTITY_KEYS
# name -> True when higher is better
METRICS = {"test_accuracy": True, "test_loss": False, "best_test_accuracy": True, "best_test_loss": False}


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

    def setting(self, key: str) -> Any:
        """A run setting, with the default of a setting the run's files predate; lists read as tuples."""
        value = self.get(key, DEFAULTS.get(key))
        if isinstance(value, list):
            return tuple(value)
        if key in LEVER_DEFAULTS and not value:
            return LEVER_DEFAULTS[key]  # 0, null, [] all mean "off"
        return value

    @property
    def config_key(self) -> tuple[Any, ...]:
        return tuple(self.setting(k) for k in CONFIG_KEYS)

    @property
    def stopped_epoch(self) -> int | None:
        """The epoch early stopping ended the run at, when it ended before its planned epochs."""
        stopped = self.result.get("stopped_epoch")
        planned = self.result.get("planned_epochs") or self.get("epochs")
        return int(stopped) if stopped and planned and int(stopped) < int(planned) else None


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

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


def t_critical(df: float) -> float:
    """Two-sided 95 % critical value of Student's t with `df` degrees of freedom (the normal's for df = inf)."""
    from scipy import stats

    if df < 1:
        raise ValueError("degrees of freedom must be >= 1")
    return float(stats.norm.ppf(0.5 + CONFIDENCE / 2) if math.isinf(df) else stats.t.ppf(0.5 + CONFIDENCE / 2, df))


def seed_stats(values: Iterable[float]) -> SeedStats:
    """Statistics of one metric over the seeds of a configuration."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("no values")
    if x.size == 1:
        return SeedStats(1, float(x[0]), None, None)
    std = float(x.std(ddof=1))
    return SeedStats(int(x.size), float(x.mean()), std, t_critical(x.size - 1) * std / math.sqrt(x.size))


def welch_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float] | None:
    """95 % interval of mean(a) - mean(b) by Welch's t-test; None when either side has one value.

    Two sides without any spread give the difference itself as a zero-width interval."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    diff = float(np.mean(a) - np.mean(b))
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return diff, diff
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
    return float(ci.low), float(ci.high)


def welch_half_width(a: Sequence[float], b: Sequence[float]) -> float | None:
    """95 % half-width of the difference of two means (Welch); None when either side has one seed."""
    interval = welch_interval(a, b)
    return None if interval is None else (interval[1] - interval[0]) / 2


@dataclass(frozen=True)
class MeanHistory:
    """The mean curves of a configuration's seeds, with their min-max range; epoch k averages the seeds that
    trained it (early stopping may end some seeds sooner)."""

    mean: History
    low: History
    high: History
    seeds_at: tuple[int, ...]  # how many seeds trained each epoch


def mean_history(histories: Sequence[History]) -> MeanHistory:
    longest = max(h.epochs for h in histories)
    curves: dict[str, dict[str, list[float]]] = {"mean": {}, "low": {}, "high": {}}
    for key in HISTORY_KEYS:
        by_epoch = [[getattr(h, key)[e] for h in histories if h.epochs > e] for e in range(longest)]
        curves["mean"][key] = [float(np.mean(v)) for v in by_epoch]
        curves["low"][key] = [float(np.min(v)) for v in by_epoch]
        curves["high"][key] = [float(np.max(v)) for v in by_epoch]
    seeds_at = tuple(sum(h.epochs > e for h in histories) for e in range(longest))
    return MeanHistory(*(History.from_mapping(curves[k]) for k in ("mean", "low", "high")), seeds_at)


@dataclass
class Group:
    """Runs that differ only in seed: a configuration, the report's unit."""

    runs: list[Run]

    def __getitem__(self, key: str) -> Any:
        return self.runs[0][key]

    def setting(self, key: str) -> Any:
        return self.runs[0].setting(key)

    @property
    def multi_seed(self) -> bool:
        return len(self.runs) > 1

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def key(self) -> tuple[Any, ...]:
        return self.runs[0].config_key

    @property
    def seeds(self) -> list[int]:
        return [r.get("seed") for r in self.runs]

    @property
    def reference(self) -> dict[str, Any] | None:
        return next((r.reference for r in self.runs if r.reference), None)

    def values(self, metric: str) -> list[float]:
        return [float(r[metric]) for r in self.runs if r.get(metric) is not None]

    def stats(self, metric: str) -> SeedStats:
        return seed_stats(self.values(metric))

    def has(self, metric: str) -> bool:
        return bool(self.values(metric))

    @cached_property
    def curves(self) -> MeanHistory:
        return mean_history([r.history for r in self.runs])

    @cached_property
    def fit(self) -> Fit:
        """Fit diagnostics of the mean curves: the configuration's overfitting verdict."""
        return diagnose(self.curves.mean)

    @property
    def agree(self) -> int:
        """How many seeds, judged on their own curves, reach the configuration's verdict."""
        return sum(r.fit.verdict == self.fit.verdict for r in self.runs)

    @property
    def best_epochs(self) -> list[int]:
        return [r.fit.best_epoch for r in self.runs]

    @property
    def stopped(self) -> list[int | None]:
        return [r.stopped_epoch for r in self.runs]

    @cached_property
    def confusion(self) -> np.ndarray | None:
        """The confusion matrices of the seeds, summed (None when no seed saved predictions)."""
        matrices = [r.predictions.confusion for r in self.runs if r.predictions is not None]
        return np.sum(matrices, axis=0) if matrices else None

    @property
    def gallery_run(self) -> Run | None:
        """The seed whose misclassified examples the report shows: the first one with predictions."""
        return next((r for r in self.runs if r.predictions is not None), None)

    @property
    def confusion_seeds(self) -> int:
        return sum(r.predictions is not None for r in self.runs)


def group_runs(runs: Iterable[Run]) -> list[Group]:
    """Group runs by configuration, in order of first appearance."""
    groups: dict[tuple[Any, ...], Group] = {}
    for run in runs:
        groups.setdefault(run.config_key, Group([])).runs.append(run)
    return list(groups.values())


# ----------------------------------------------------------------------------------------------- comparisons
@dataclass(frozen=True)
class Comparison:
    """Ahead vs behind on one metric: the difference of their means and its Welch 95 % interval.

    status: 'clear' (the interval excludes zero), 'noise' (it does not) or 'single_seed' (a side has one seed,
    so no difference was tested)."""

    ahead: Group
    behind: Group
    metric: str
    diff: float  # ahead.mean - behind.mean (negative for losses)
    interval: tuple[float, float] | None
    status: str

    @property
    def half_width(self) -> float | None:
        return None if self.interval is None else (self.interval[1] - self.interval[0]) / 2

    @property
    def n(self) -> int:
        """The seeds of the smaller side (what "with n seeds" refers to)."""
        return min(self.ahead.n, self.behind.n)


def versus(group: Group, baseline: Group, metric: str = "test_accuracy") -> Comparison:
    """`group` against `baseline` as given (diff = group mean - baseline mean), with Welch's 95 % interval."""
    va, vb = group.values(metric), baseline.values(metric)
    interval = welch_interval(va, vb)
    excludes_zero = interval is not None and (interval[0] > 0 or interval[1] < 0)
    status = "single_seed" if interval is None else ("clear" if excludes_zero else "noise")
    return Comparison(group, baseline, metric, float(np.mean(va) - np.mean(vb)), interval, status)


def compare(a: Group, b: Group, metric: str) -> Comparison:
    """Compare two configurations on a metric, the better one ahead; an interval that holds zero is noise."""
    ma, mb = a.stats(metric).mean, b.stats(metric).mean
    return versus(b, a, metric) if (ma < mb) == METRICS[metric] and ma != mb else versus(a, b, metric)


@dataclass(frozen=True)
class Ranking:
    """Configurations equal except on `vary`, best first on `metric`, with adjacent comparisons."""

    vary: str
    metric: str
    groups: list[Group]
    steps: list[Comparison]

    @property
    def shared(self) -> dict[str, Any]:
        return {k: self.groups[0].setting(k) for k in CONFIG_KEYS if k != self.vary}

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
