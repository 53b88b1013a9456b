"""The statistics every reader of results shares: the best epoch, mean ± sd over seeds and the seed intervals."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from cnnkit.errors import DataError

CONFIDENCE = 0.95
# The validation figures a search may judge its trials on, and which way is better.
DIRECTIONS = {"val_loss": "minimize", "val_accuracy": "maximize"}


def best_epoch(val_loss: Sequence[float | None]) -> int:
    """1-based epoch of the lowest validation loss: the first of equals, and never a NaN epoch (as the best
    checkpoint is kept: Lightning's ModelCheckpoint treats a non-finite val_loss as no improvement)."""
    losses = np.array([math.nan if v is None else v for v in val_loss], dtype=float)
    if losses.size == 0 or np.isnan(losses).all():
        raise DataError("empty validation-loss history")
    return 1 + int(np.nanargmin(losses))


def best_value(values: Sequence[float | None], metric: str) -> float | None:
    """The best of a validation metric's values (lowest loss, highest accuracy), NaN and missing epochs aside;
    None when no epoch has a finite value."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return min(finite) if DIRECTIONS[metric] == "minimize" else max(finite)


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

    def text(self) -> str:
        """'0.9876' for one seed, '0.9876 ± 0.0012' (sample sd) for several."""
        return mean_sd(self.mean, self.std)


def mean_sd(mean: float, sd: float | None) -> str:
    """`0.9874 ± 0.0012`, or `0.9874` without a spread (one seed: sd None or NaN)."""
    return f"{mean:.4f}" if sd is None or math.isnan(sd) else f"{mean:.4f} ± {sd:.4f}"


def prediction_interval(stats: SeedStats) -> tuple[float, float] | None:
    """The 95 % prediction interval for one more run, mean ± t·s·√(1 + 1/n): where a single run of the same
    configuration (a published figure) is expected to fall; None with fewer than two seeds."""
    if stats.n < 2 or stats.std is None:
        return None
    half = t_critical(stats.n - 1) * stats.std * math.sqrt(1 + 1 / stats.n)
    return stats.mean - half, stats.mean + half


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
    with warnings.catch_warnings():  # one side without spread: scipy warns of precision loss, the interval holds
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
    return float(ci.low), float(ci.high)


def contrast_interval(cells: Sequence[tuple[Sequence[float], Sequence[float]]]) -> tuple[float, float] | None:
    """95 % interval of a main effect in a crossed design: the mean over cells of mean(a) - mean(b), each cell a
    pair of seed samples at the two levels compared, the other factors fixed. Its variance is the cells' Welch
    variances over the number of cells squared, its degrees of freedom Welch–Satterthwaite's; None when any side
    of any cell has one value."""
    if not cells or any(len(a) < 2 or len(b) < 2 for a, b in cells):
        return None
    k = len(cells)
    diff = sum(float(np.mean(a) - np.mean(b)) for a, b in cells) / k
    terms = [float(np.var(x, ddof=1)) / len(x) / k**2 for a, b in cells for x in (a, b)]
    sizes = [len(x) for a, b in cells for x in (a, b)]
    variance = sum(terms)
    if variance == 0:
        return diff, diff
    df = variance**2 / sum(t**2 / (n - 1) for t, n in zip(terms, sizes, strict=True))
    half = t_critical(df) * math.sqrt(variance)
    return diff - half, diff + half
