"""A study's errors as plain rows (no pandas here): per class, calibration and the most-confused pairs.

The figures are cnnkit.results.errors', from each run's predictions (runs without them are left out); the report's
Error analysis shows the same numbers. `results.StudyResult` turns the rows into DataFrames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from cnnkit.errors import UsageError
from cnnkit.results import errors as er
from cnnkit.results.reading import Predictions

PER_CLASS = ("class", "precision", "recall", "f1", "support")
INTERVALS = tuple(f"{m}_{side}" for m in er.CLASS_METRICS for side in ("low", "high"))
CALIBRATION = ("ece", "mce", "n_bins")
PAIRS = ("true", "predicted", "count")
BY = ("run", "configuration")

Run = tuple[dict[str, Any], Predictions]  # a run's settings and its predictions


def _unseeded(settings: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in settings.items() if name != "seed"}


def _configurations(runs: Iterable[Run]) -> list[list[Run]]:
    """Runs grouped by every setting but the seed, in order of first appearance."""
    groups: dict[tuple[Any, ...], list[Run]] = {}
    for settings, predictions in runs:
        key = tuple(repr(v) for v in _unseeded(settings).values())  # list and table settings are not hashable
        groups.setdefault(key, []).append((settings, predictions))
    return list(groups.values())


def per_class_rows(runs: Sequence[Run], by: str) -> tuple[list[dict[str, Any]], bool]:
    """(rows, whether they have interval columns): one per run (`by="run"`) or configuration and class."""
    if by not in BY:
        raise UsageError(f"unknown per_class(by={by!r}); valid: {', '.join(map(repr, BY))}")
    rows: list[dict[str, Any]] = []
    if by == "run":
        for settings, predictions in runs:
            scores = er.ClassScores.from_confusion(predictions.confusion)
            for c, name in enumerate(predictions.class_names):
                rows.append({**settings, "class": name, **_scores(scores, c)})
        return rows, False
    groups = _configurations(runs)
    intervals = any(len(members) > 1 for members in groups)
    for members in groups:
        stats = er.class_stats([er.ClassScores.from_confusion(p.confusion) for _, p in members])
        for c, name in enumerate(members[0][1].class_names):
            row = {**_unseeded(members[0][0]), "class": name}
            row.update({m: stats.metric(m)[c].mean for m in er.CLASS_METRICS})
            row["support"] = round(stats.support[c])  # every seed has the same test set
            if intervals:
                for m in er.CLASS_METRICS:
                    s = stats.metric(m)[c]
                    row[f"{m}_low"] = math.nan if s.low is None else s.low
                    row[f"{m}_high"] = math.nan if s.high is None else s.high
            rows.append(row)
    return rows, intervals


def _scores(scores: er.ClassScores, c: int) -> dict[str, Any]:
    return {
        "precision": float(scores.precision[c]),
        "recall": float(scores.recall[c]),
        "f1": float(scores.f1[c]),
        "support": int(scores.support[c]),
    }


def calibration_rows(runs: Sequence[Run], n_bins: int = er.N_BINS) -> list[dict[str, Any]]:
    """One row per run that kept its test-set probabilities: its settings, ECE, MCE and the number of bins."""
    rows = []
    for settings, predictions in runs:
        if predictions.probabilities is None:
            continue
        cal = er.calibration(predictions.probabilities, predictions.y_true, n_bins)
        rows.append({**settings, "ece": cal.ece, "mce": cal.mce, "n_bins": cal.n_bins})
    return rows


def confused_pair_rows(runs: Sequence[Run], k: int) -> list[dict[str, Any]]:
    """Each configuration's `k` most-confused pairs (true and predicted class names, count summed over its seeds),
    in descending count (configurations in order of first appearance among equal counts)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise UsageError(f"confused_pairs(k={k!r}): k must be a whole number >= 0")
    rows = []
    for members in _configurations(runs):
        names = members[0][1].class_names
        for pair in er.confused_pairs([p.confusion for _, p in members], k):
            rows.append(
                {**_unseeded(members[0][0]), "true": names[pair.true], "predicted": names[pair.predicted],
                 "count": pair.count}
            )  # fmt: skip
    return sorted(rows, key=lambda row: -row["count"])  # stable: configurations keep their order among ties
