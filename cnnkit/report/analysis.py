"""Analysis of a study's result files: fit diagnostics, seed statistics, comparisons and confusion matrices.

Everything here is a pure function of the files a study writes (study.json and, per run, config.json,
metrics.csv, result.json, predictions.npz); nothing is trained or imported from torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.results.reading import HISTORY_KEYS, TRAIN_EVAL_KEYS, History
from cnnkit.results.runs import LEVER_DEFAULTS, StoredRun, StoredStudy
from cnnkit.results.runs import load_study as stored_study
from cnnkit.results.stats import SeedStats, best_epoch, seed_stats, welch_interval
from cnnkit.training.config import IDENTITY_KEYS

# The overfitting rule. "At the end" is the mean of the last epochs (a quarter of the run, at most END_EPOCHS), so
# that one noisy epoch does not decide, and "its minimum" the lowest mean of as many consecutive epochs (a curve
# still falling has no rise).
# A run overfits *strongly* when, at the end, its validation loss stands at least STRONG_VAL_LOSS_RISE
# (relative) above its minimum AND training accuracy exceeds validation accuracy by at least STRONG_ACC_GAP. It
# overfits *mildly* when either the validation loss rose at least MILD_VAL_LOSS_RISE above its minimum or the
# accuracy gap is at least MILD_ACC_GAP. Otherwise: none. The training accuracy is the clean one (eval mode, no
# augmentation, a fixed sample of training images) where the run recorded it, else the running mean over the
# epoch's batches. With fewer than MIN_VERDICT_EPOCHS epochs there is no trend to judge: "too_early".
STRONG_VAL_LOSS_RISE = 0.10
STRONG_ACC_GAP = 0.05
MILD_VAL_LOSS_RISE = 0.02
MILD_ACC_GAP = 0.02
MIN_VERDICT_EPOCHS = 3
END_EPOCHS = 3
VERDICTS = ("none", "mild", "strong", "too_early")

# Training levers (their values when off: LEVER_DEFAULTS); result files written before them lack the keys.
LEVER_KEYS = tuple(LEVER_DEFAULTS)
# Settings that make two runs "the same configuration"; runs equal on all of these differ only in seed.
CONFIG_KEYS = IDENTITY_KEYS
# name -> True when higher is better
METRICS = {"test_accuracy": True, "test_loss": False, "best_test_accuracy": True, "best_test_loss": False}


# ----------------------------------------------------------------------------------------------- per run
@dataclass(frozen=True)
class Fit:
    """Fit diagnostics of one history: best epoch, generalization gaps and the overfitting verdict."""

    best_epoch: int  # 1-based epoch of the lowest validation loss
    val_loss_min: float
    val_loss_final: float  # at the end: the mean of the last END_EPOCHS epochs
    val_loss_rise: float  # end - the lowest mean of END_EPOCHS consecutive epochs
    val_loss_rise_rel: float  # that rise relative to that lowest mean
    final_loss_gap: float  # val_loss - train_loss, at the end
    final_acc_gap: float  # training accuracy - val_accuracy, at the end
    best_loss_gap: float
    best_acc_gap: float
    verdict: str
    clean: bool = False  # the training figures are the clean ones (train_eval_*), not the running means
    end_epochs: int = END_EPOCHS  # how many last epochs "the end" averages


def overfitting_verdict(val_loss_rise_rel: float, acc_gap: float) -> str:
    """Apply the overfitting rule (see the module constants) to a relative val-loss rise and an accuracy gap."""
    if val_loss_rise_rel >= STRONG_VAL_LOSS_RISE and acc_gap >= STRONG_ACC_GAP:
        return "strong"
    if val_loss_rise_rel >= MILD_VAL_LOSS_RISE or acc_gap >= MILD_ACC_GAP:
        return "mild"
    return "none"


def end_window(epochs: int) -> int:
    """How many last epochs "the end" averages: a quarter of the run, at least 1, at most END_EPOCHS."""
    return max(1, min(END_EPOCHS, epochs // 4))


def _end(values: Sequence[float], k: int) -> float:
    return float(np.mean(values[-k:]))


def diagnose(history: History) -> Fit:
    """Compute the fit diagnostics of one run's history (the rule above)."""
    best = best_epoch(history.val_loss)
    clean = history.has_train_eval and not any(math.isnan(v) for v in history.train_eval_accuracy[-END_EPOCHS:])
    train_loss = history.train_eval_loss if clean else history.train_loss
    train_acc = history.train_eval_accuracy if clean else history.train_accuracy
    k = end_window(history.epochs)
    vmin, vend = history.val_loss[best - 1], _end(history.val_loss, k)
    # the rise is read on the curve's k-epoch running mean: its last value against its lowest
    running = np.convolve(np.asarray(history.val_loss, dtype=float), np.ones(k) / k, mode="valid")
    low = float(np.nanmin(running))
    rise = max(float(running[-1]) - low, 0.0)
    rise_rel = rise / low if low > 0 else (math.inf if rise > 0 else 0.0)
    gap_acc = _end(train_acc, k) - _end(history.val_accuracy, k)
    return Fit(
        best_epoch=best,
        val_loss_min=vmin,
        val_loss_final=vend,
        val_loss_rise=rise,
        val_loss_rise_rel=rise_rel,
        final_loss_gap=vend - _end(train_loss, k),
        final_acc_gap=gap_acc,
        best_loss_gap=vmin - train_loss[best - 1],
        best_acc_gap=train_acc[best - 1] - history.val_accuracy[best - 1],
        verdict=overfitting_verdict(rise_rel, gap_acc) if history.epochs >= MIN_VERDICT_EPOCHS else "too_early",
        clean=clean,
        end_epochs=k,
    )


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each true class (NaN for a class without test examples)."""
    totals = confusion.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / totals, np.nan)


def layer_macs(layer: dict[str, Any]) -> int:
    """Multiply-adds of a Conv/Dense layer from its Keras-style summary row (weights x output positions)."""
    kind, shape, params = str(layer.get("type", "")), layer.get("output_shape") or [], int(layer.get("params", 0))
    if not params or not shape or not any(k in kind for k in ("Conv", "Dense", "Linear")):
        return 0
    units = int(shape[-1])
    positions = math.prod(int(d) for d in shape[1:-1] if d is not None)
    return (params - units) * positions


# ----------------------------------------------------------------------------------------------- study
class Run(StoredRun):
    """One complete run with its fit diagnostics."""

    @cached_property
    def fit(self) -> Fit:
        return diagnose(self.history)


@dataclass
class Study(StoredStudy):
    @cached_property
    def groups(self) -> list[Group]:
        return group_runs(self.runs)


def load_study(path: Path) -> Study:
    """Load every run of a study directory (cnnkit.results.runs) with its fit diagnostics, validated now."""
    study = stored_study(Path(path), Study, Run)
    for run in study.runs:
        _ = run.fit  # an empty curve is a DataError now, not in the middle of a report
    return study


# ----------------------------------------------------------------------------------------------- seeds
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
    clean = all(h.has_train_eval for h in histories)
    for key in (*HISTORY_KEYS, *(TRAIN_EVAL_KEYS if clean else ())):
        by_epoch = [[getattr(h, key)[e] for h in histories if h.epochs > e] for e in range(longest)]
        curves["mean"][key] = [float(np.mean(v)) for v in by_epoch]
        curves["low"][key] = [float(np.min(v)) for v in by_epoch]
        curves["high"][key] = [float(np.max(v)) for v in by_epoch]
    seeds_at = tuple(sum(h.epochs > e for h in histories) for e in range(longest))
    mean, low, high = (History.from_mapping(curves[k]) for k in ("mean", "low", "high"))
    return MeanHistory(mean, low, high, seeds_at)


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

    @property
    def reference_accuracy(self) -> float:
        """The published test accuracy, of a configuration that has one (those in `Factor.references`)."""
        reference = self.reference
        if reference is None:
            raise ValueError(f"configuration {self.key} has no published figure")
        return reference["test_accuracy"]

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
    def partly_clean(self) -> bool:
        """Some seeds recorded clean training figures and some predate them: the mean curves, which need every
        seed's, then read the running means of all."""
        return not self.fit.clean and any(r.history.has_train_eval for r in self.runs)

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
