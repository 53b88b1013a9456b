"""A study's runs as plain rows: settings and figures per run, curves per epoch, mean ± sd per configuration.

Pure Python over the result files (no pandas here): `results.StudyResult` turns the rows into DataFrames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cnnkit.results.stats import seed_stats
from cnnkit.training.settings import config_names, default_of
from cnnkit.training.values import toml_inline

FIGURES = (
    "test_accuracy",
    "test_loss",
    "best_epoch",
    "best_test_accuracy",
    "best_test_loss",
    "stopped_epoch",
    "params",
    "train_seconds",
    "images_per_second",
)
SUMMARY_METRICS = ("test_accuracy", "test_loss", "best_test_accuracy", "best_test_loss")


def _cell(value: Any) -> Any:
    """A setting as a table cell, hashable for grouping: a list (augment) as 'flip+crop', a table (arch) in one line
    as the command line takes it (`{ stages = [[32, 64]], head = "gap" }`)."""
    if isinstance(value, (list, tuple)):
        return "+".join(str(v) for v in value)
    if isinstance(value, dict):
        return toml_inline(value)
    return value


def run_settings(config: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """Every RunConfig setting of a run, typed as the settings schema says (`augment` a list; a key its files
    lack: the default); lr as used (the preset's when unset)."""
    stored = config.get("run") or config
    settings = {}
    for name in config_names():
        for source in (stored, config, result):
            if name in source:
                settings[name] = _typed(source[name])
                break
        else:
            settings[name] = _typed(default_of(name))
    if settings.get("lr") is None:
        settings["lr"] = result.get("lr")
    return settings


def _typed(value: Any) -> Any:
    """A setting as the schema types it: a tuple setting (augment) as a list, whatever its file held."""
    return list(value) if isinstance(value, (list, tuple)) else value


def cells(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as table cells (a list as 'flip+crop'), hashable for grouping."""
    return {name: _cell(value) for name, value in settings.items()}


def run_figures(result: Mapping[str, Any]) -> dict[str, Any]:
    figures = {name: result.get(name) for name in FIGURES}
    if figures["stopped_epoch"] is None:  # results written before early stopping existed trained every epoch
        figures["stopped_epoch"] = len((result.get("history") or {}).get("val_loss") or []) or result.get("epochs")
    return figures


def configuration(settings: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes runs the same configuration: every setting but the seed."""
    return tuple(value for name, value in settings.items() if name != "seed")


def summary_rows(runs: Iterable[tuple[dict[str, Any], Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per configuration (settings, figures): its settings but the seed, n, seeds, mean and sd of each
    metric over the seeds (sd NaN for one seed), in order of first appearance."""
    groups: dict[tuple[Any, ...], list[tuple[dict[str, Any], Mapping[str, Any]]]] = {}
    for settings, figures in runs:
        groups.setdefault(configuration(settings), []).append((settings, figures))
    rows = []
    for members in groups.values():
        row = {name: value for name, value in members[0][0].items() if name != "seed"}
        row["n"] = len(members)
        row["seeds"] = ",".join(str(settings["seed"]) for settings, _ in members)
        for metric in SUMMARY_METRICS:
            stats = seed_stats(float(figures[metric]) for _, figures in members)
            row[f"{metric}_mean"] = stats.mean
            row[f"{metric}_sd"] = stats.std if stats.std is not None else math.nan
        rows.append(row)
    return rows


def varying(rows: Sequence[Mapping[str, Any]], names: Iterable[str]) -> list[str]:
    """The names whose value differs between rows (what tells configurations apart)."""
    return [name for name in names if len({repr(row.get(name)) for row in rows}) > 1]
