"""The statistics of a model's errors, from the per-image predictions every run keeps (numpy and scipy only).

Per class: precision, recall, F1 and support, as torchmetrics' multiclass metrics compute them with
`average=None` (a class never predicted, or never present, scores 0: torchmetrics' `zero_division=0`).
Confusions: the most frequent (true, predicted) pairs. Paired tests: McNemar's exact test of two models on the same
test images, with Holm's correction over several. Seeds: the images every seed gets wrong. Calibration: the
expected and maximum calibration error over 15 equal-width confidence bins, exactly as torchmetrics'
`MulticlassCalibrationError` bins them, and the most confident wrong predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnkit.errors import DataError
from cnnkit.results.stats import SeedStats, seed_stats

N_BINS = 15  # calibration bins, torchmetrics' default
ALPHA = 0.05  # the family-wise level of the paired tests
CLASS_METRICS = ("precision", "recall", "f1")


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (torchmetrics' zero_division=0)."""
    num, den = numerator.astype(float), denominator.astype(float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


# ----------------------------------------------------------------------------------------------- per class
@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and support of each class of one run (arrays indexed by class)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray  # true test images of each class

    @classmethod
    def from_confusion(cls, confusion: np.ndarray) -> ClassScores:
        """From a confusion matrix with true classes as rows and predicted classes as columns."""
        confusion = np.asarray(confusion, dtype=np.int64)
        tp = np.diag(confusion)
        predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
        return cls(
            precision=_ratio(tp, predicted),
            recall=_ratio(tp, support),
            f1=_ratio(2 * tp, predicted + support),  # 2tp / (2tp + fp + fn)
            support=support,
        )

    def metric(self, name: str) -> np.ndarray:
        return np.asarray(getattr(self, name))


@dataclass(frozen=True)
class ClassStats:
    """A configuration's per-class figures over its seeds: mean and t interval of each metric per class."""

    seeds: int
    precision: tuple[SeedStats, ...]
    recall: tuple[SeedStats, ...]
    f1: tuple[SeedStats, ...]
    support: tuple[float, ...]  # the mean over seeds (every seed of a configuration sees the same test set)

    def metric(self, name: str) -> tuple[SeedStats, ...]:
        return tuple(getattr(self, name))

    def worst(self, metric: str = "f1") -> list[int]:
        """Class indices from the lowest mean `metric` up (ties: the lower index first)."""
        means = [s.mean for s in self.metric(metric)]
        return sorted(range(len(means)), key=lambda i: (means[i], i))


def class_stats(scores: Sequence[ClassScores]) -> ClassStats:
    """Each class's mean over the seeds' scores, with its 95 % t interval when there are several seeds."""
    if not scores:
        raise ValueError("no scores")

    def per_class(name: str) -> tuple[SeedStats, ...]:
        values = np.array([s.metric(name) for s in scores], dtype=float)
        return tuple(seed_stats(values[:, c]) for c in range(values.shape[1]))

    support = np.mean([s.support for s in scores], axis=0)
    return ClassStats(len(scores), per_class("precision"), per_class("recall"), per_class("f1"), tuple(support))


# ----------------------------------------------------------------------------------------------- confusions
@dataclass(frozen=True)
class ConfusedPair:
    """Test images of class `true` predicted as `predicted`: summed over seeds, and per seed."""

    true: int
    predicted: int
    count: int
    per_seed: tuple[int, ...]


def confused_pairs(confusions: Sequence[np.ndarray], k: int = 5) -> list[ConfusedPair]:
    """The `k` most frequent confusions (true != predicted) of the seeds' confusion matrices summed, most first
    (ties: by true class, then predicted class); pairs never confused are left out."""
    if k < 0:
        raise ValueError("k must be >= 0")
    if not confusions:
        return []
    stack = np.asarray(confusions, dtype=np.int64)
    total = stack.sum(axis=0)
    off = [(int(total[t, p]), t, p) for t in range(total.shape[0]) for p in range(total.shape[1]) if t != p]
    ranked = sorted((x for x in off if x[0] > 0), key=lambda x: (-x[0], x[1], x[2]))[:k]
    return [ConfusedPair(t, p, n, tuple(int(c) for c in stack[:, t, p])) for n, t, p in ranked]


# ----------------------------------------------------------------------------------------------- paired tests
@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of two models on the same test images: the discordant pairs and the two-sided p of a
    binomial test of `only_a` successes in `only_a + only_b` trials at 1/2 (p = 1 without discordant pairs)."""

    only_a: int  # images model a gets right and model b wrong
    only_b: int  # images model b gets right and model a wrong
    both_right: int
    both_wrong: int
    p: float

    @property
    def discordant(self) -> int:
        return self.only_a + self.only_b

    @property
    def images(self) -> int:
        return self.discordant + self.both_right + self.both_wrong


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> McNemar:
    """McNemar's exact test (scipy.stats.binomtest on the discordant pairs) of two models' test predictions."""
    from scipy.stats import binomtest

    y_true, pred_a, pred_b = (np.asarray(x, dtype=np.int64) for x in (y_true, pred_a, pred_b))
    if not y_true.shape == pred_a.shape == pred_b.shape:
        raise DataError("the two models' predictions are not of the same test images")
    right_a, right_b = pred_a == y_true, pred_b == y_true
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    p = float(binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
    return McNemar(only_a, only_b, int(np.sum(right_a & right_b)), int(np.sum(~right_a & ~right_b)), p)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (in the order given): the k-th smallest of m is multiplied by m - k + 1,
    kept monotone and capped at 1; an adjusted p below ALPHA rejects at family-wise level ALPHA."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


# ----------------------------------------------------------------------------------------------- seeds
@dataclass(frozen=True)
class Agreement:
    """How the seeds of a configuration agree on the test images: those every seed gets wrong (test-set indices)
    and how many only some seeds get wrong."""

    seeds: int
    images: int
    all_wrong: np.ndarray  # test-set indices, ascending
    some_wrong: int

    @property
    def none_wrong(self) -> int:
        return self.images - len(self.all_wrong) - self.some_wrong


def agreement(y_true: np.ndarray, predictions: Sequence[np.ndarray]) -> Agreement:
    """The seeds' agreement on which test images they get wrong (every seed's predictions in test-set order)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    wrong = np.array([np.asarray(p, dtype=np.int64) != y_true for p in predictions])
    if wrong.ndim != 2 or wrong.shape[1] != y_true.shape[0]:
        raise DataError("the seeds' predictions are not of the same test images")
    times = wrong.sum(axis=0)
    seeds = wrong.shape[0]
    some = int(np.sum((times > 0) & (times < seeds)))
    return Agreement(seeds, int(y_true.shape[0]), np.flatnonzero(times == seeds), some)


# ----------------------------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """Top-label calibration of one run: ECE (L1) and MCE (max) over equal-width confidence bins, and the bins.

    As torchmetrics' MulticlassCalibrationError: the confidence is the highest probability, right when its class
    is the true one; bin i holds confidences in [i/n, (i+1)/n), and a confidence of exactly 1 a bin of its own
    (index n), so the arrays have n + 1 entries; an empty bin has confidence and accuracy 0."""

    ece: float
    mce: float
    n_bins: int
    count: np.ndarray
    confidence: np.ndarray  # mean confidence per bin
    accuracy: np.ndarray  # fraction right per bin
    mean_confidence: float  # over every image
    top_accuracy: float  # fraction of images whose most probable class is the true one


def calibration(probabilities: np.ndarray, y_true: np.ndarray, n_bins: int = N_BINS) -> Calibration:
    """The calibration of test-set probabilities (images x classes, rows summing to 1)."""
    probs = np.asarray(probabilities, dtype=np.float32)
    y_true = np.asarray(y_true, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != y_true.shape[0]:
        raise DataError(f"probabilities of shape {probs.shape} do not match {y_true.shape[0]} test labels")
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    confidence = probs.max(axis=1).astype(np.float64)
    right = (probs.argmax(axis=1) == y_true).astype(np.float64)
    boundaries = np.linspace(0, 1, n_bins + 1, dtype=np.float32).astype(np.float64)
    index = np.searchsorted(boundaries, confidence, side="right") - 1  # torch.bucketize(right=True) - 1
    count = np.bincount(index, minlength=n_bins + 1).astype(np.float64)
    mean_conf = _ratio(np.bincount(index, confidence, minlength=n_bins + 1), count)
    mean_acc = _ratio(np.bincount(index, right, minlength=n_bins + 1), count)
    gap = np.abs(mean_acc - mean_conf)
    ece = float(np.sum(gap * count / count.sum())) if count.sum() else 0.0
    return Calibration(
        ece, float(gap.max()), n_bins, count.astype(np.int64), mean_conf, mean_acc,
        float(confidence.mean()) if confidence.size else 0.0, float(right.mean()) if right.size else 0.0,
    )  # fmt: skip


@dataclass(frozen=True)
class ConfidentMistake:
    """A wrong test prediction with its probability (`confidence`) and the probability of the true class."""

    index: int  # position in the test set
    true: int
    predicted: int
    confidence: float
    p_true: float


def confident_mistakes(probabilities: np.ndarray, y_true: np.ndarray, k: int = 8) -> list[ConfidentMistake]:
    """The `k` most confident wrong predictions (the highest loss first among equal confidences, then by index)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    predicted = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    p_true = probs[np.arange(len(y_true)), y_true]
    wrong = np.flatnonzero(predicted != y_true)
    ranked = sorted(wrong.tolist(), key=lambda i: (-confidence[i], p_true[i], i))[:k]
    return [
        ConfidentMistake(i, int(y_true[i]), int(predicted[i]), float(confidence[i]), float(p_true[i])) for i in ranked
    ]
