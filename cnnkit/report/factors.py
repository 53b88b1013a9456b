"""The study's question, read from what its configurations vary: one numeric factor (an lr grid, a dropout
grid), an ablation of training levers against a baseline without any, networks compared on accuracy and cost, or
a grid crossing two or more settings, read factor by factor (main effects).

Like analysis.py, a pure function of the loaded study; no wording here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cnnkit.report import analysis as an
from cnnkit.report.netinfo import NetInfo, net_key
from cnnkit.results.stats import contrast_interval
from cnnkit.training.config import SETTINGS

NUMERIC = tuple(s.name for s in SETTINGS if s.factor_axis)
OWN_SECTIONS = ("dataset", "architecture", "arch", "optimizer")  # networks: `architectures` below
LOG_SPAN = 100.0  # a log axis when the factor's values span at least two decades


def varying(groups: Sequence[an.Group]) -> list[str]:
    """Settings (in CONFIG_KEYS order) on which the configurations differ; the free-text label is left out."""
    return [k for k in an.CONFIG_KEYS if k != "label" and len({repr(g.setting(k)) for g in groups}) > 1]


def factor_value(group: an.Group, key: str) -> Any:
    """A configuration's value of a factor; lr falls back to the optimizer's resolved default."""
    value = group.setting(key)
    if key == "lr" and value is None:
        value = (group.runs[0].config.get("optimizer_hparams") or {}).get("lr")
    return value


@dataclass(frozen=True)
class Factor:
    """The one setting the configurations differ in, its values in order and the best value's lead."""

    key: str
    groups: list[an.Group]  # ordered by the factor's value
    values: list[Any]

    @property
    def numeric(self) -> bool:
        return self.key in NUMERIC and all(isinstance(v, (int, float)) for v in self.values)

    @property
    def log(self) -> bool:
        positive = [float(v) for v in self.values if isinstance(v, (int, float)) and v > 0]
        return len(positive) == len(self.values) and max(positive) / min(positive) >= LOG_SPAN

    @property
    def best(self) -> an.Group:
        return max(self.groups, key=lambda g: g.stats("test_accuracy").mean)

    @property
    def lead(self) -> an.Comparison:
        """The best value against the runner-up on final test accuracy."""
        ranked = sorted(self.groups, key=lambda g: -g.stats("test_accuracy").mean)
        return an.compare(ranked[0], ranked[1], "test_accuracy")

    @property
    def references(self) -> list[an.Group]:
        return [g for g in self.groups if g.reference and "test_accuracy" in g.reference]


def single_factor(groups: Sequence[an.Group]) -> Factor | None:
    """The factor when the configurations differ in exactly one setting (and there are at least two); datasets,
    networks and optimizers are left to the report's own comparisons of them."""
    keys = varying(groups)
    if len(groups) < 2 or len(keys) != 1 or keys[0] in OWN_SECTIONS:
        return None
    key = keys[0]
    values = [factor_value(g, key) for g in groups]
    try:
        order = sorted(range(len(groups)), key=lambda i: values[i])
    except TypeError:
        order = list(range(len(groups)))
    return Factor(key, [groups[i] for i in order], [values[i] for i in order])


def levers_of(group: an.Group) -> list[str]:
    """The levers a configuration turns on, in LEVER_KEYS order."""
    return [k for k in an.LEVER_KEYS if group.setting(k) != an.LEVER_DEFAULTS[k]]


@dataclass(frozen=True)
class AblationRow:
    group: an.Group
    levers: list[str]
    versus: an.Comparison | None  # None for the baseline itself


@dataclass(frozen=True)
class Ablation:
    """A baseline without levers, each lever alone, and levers combined, each against the baseline."""

    baseline: AblationRow
    rows: list[AblationRow]  # single levers first, then combinations (fewest levers first)

    @property
    def best(self) -> AblationRow:
        return max(self.rows, key=lambda r: r.group.stats("test_accuracy").mean)

    @property
    def ends_overfitting(self) -> list[AblationRow]:
        """Levers whose configuration does not overfit (verdict "none") where the baseline does."""
        if self.baseline.group.fit.verdict not in ("strong", "mild"):
            return []
        return [r for r in self.rows if r.group.fit.verdict == "none"]

    @property
    def reduces_overfitting(self) -> list[AblationRow]:
        """Levers whose configuration still overfits, but less than the baseline (strong to mild)."""
        if self.baseline.group.fit.verdict != "strong":
            return []
        return [r for r in self.rows if r.group.fit.verdict == "mild"]


def ablation(groups: Sequence[an.Group]) -> Ablation | None:
    """The lever ablation when configurations differ only in levers and exactly one of them uses none."""
    keys = varying(groups)
    if len(groups) < 2 or not keys or not set(keys) <= set(an.LEVER_KEYS):
        return None
    baselines = [g for g in groups if not levers_of(g)]
    if len(baselines) != 1:
        return None
    base = baselines[0]
    others = sorted((g for g in groups if g is not base), key=lambda g: len(levers_of(g)))
    rows = [AblationRow(g, levers_of(g), an.versus(g, base)) for g in others]
    return Ablation(AblationRow(base, [], None), rows)


# ----------------------------------------------------------------------------------------------- architectures
ARCH_KEYS = ("architecture", "arch")


@dataclass(frozen=True)
class ArchRow:
    """One network of an architecture comparison: its configuration, its counts and its measured time."""

    group: an.Group
    net: NetInfo | None  # None when its runs recorded no layer table

    @cached_property
    def epoch_seconds(self) -> list[float]:
        """Every epoch of every seed, as result.json recorded them."""
        return [float(s) for r in self.group.runs for s in r.result.get("epoch_seconds") or []]

    @property
    def devices(self) -> frozenset[str]:
        """What its runs trained on, as result.json names it ("CPU x86_64 (1 thread)")."""
        return frozenset(str(r.result["device"]) for r in self.group.runs if r.result.get("device"))

    @property
    def seconds_per_epoch(self) -> float | None:
        return sum(self.epoch_seconds) / len(self.epoch_seconds) if self.epoch_seconds else None


@dataclass(frozen=True)
class ArchCost:
    """A network against the reference network: the accuracy it gains and what it costs, as ratios."""

    row: ArchRow
    versus: an.Comparison  # row against the reference (diff = row - reference)
    params: float | None
    macs: float | None
    time: float | None


def _ratio(x: float | None, y: float | None) -> float | None:
    return x / y if x is not None and y else None


@dataclass(frozen=True)
class Architectures:
    """Configurations that differ only in their network (architecture or `arch` table). The reference is the
    study's first network, as its author listed it (the baseline the others are built to beat)."""

    rows: list[ArchRow]  # study order, the reference first

    @property
    def reference(self) -> ArchRow:
        return self.rows[0]

    @property
    def best(self) -> ArchRow:
        return max(self.rows, key=lambda r: r.group.stats("test_accuracy").mean)

    @property
    def same_hardware(self) -> bool:
        """Every run trained on one kind of device with one thread count: only then do times per epoch compare."""
        return len(frozenset().union(*(r.devices for r in self.rows))) == 1

    @property
    def costs(self) -> list[ArchCost]:
        """Every other network against the reference; the time ratio only when the runs shared their hardware."""
        ref = self.reference
        out = []
        for row in self.rows[1:]:
            params = _ratio(row.net.params, ref.net.params) if row.net and ref.net else None
            macs = _ratio(row.net.macs, ref.net.macs) if row.net and ref.net else None
            time = _ratio(row.seconds_per_epoch, ref.seconds_per_epoch) if self.same_hardware else None
            out.append(ArchCost(row, an.versus(row.group, ref.group), params, macs, time))
        return out

    @property
    def best_cost(self) -> ArchCost | None:
        """The most accurate network against the reference (None when the reference is the most accurate)."""
        return next((c for c in self.costs if c.row is self.best), None)

    @property
    def lead(self) -> an.Comparison:
        """The most accurate network against the runner-up."""
        ranked = sorted(self.rows, key=lambda r: -r.group.stats("test_accuracy").mean)
        return an.compare(ranked[0].group, ranked[1].group, "test_accuracy")

    @property
    def tied_with_best(self) -> list[ArchRow]:
        """The networks that seeds cannot tell apart from the best one (the best included); the best alone when
        any side has a single seed (nothing was tested)."""
        best = self.best
        return [r for r in self.rows if r is best or an.compare(best.group, r.group, "test_accuracy").status == "noise"]

    @property
    def cheapest_tied(self) -> ArchRow | None:
        """Among the networks tied with the best (two or more), the one with the fewest multiply-adds per image."""
        counted = [(r.net.macs, i, r) for i, r in enumerate(self.tied_with_best) if r.net and r.net.macs is not None]
        if len(self.tied_with_best) < 2 or len(counted) < 2:
            return None
        return min(counted)[2]


def architectures(groups: Sequence[an.Group], nets: Sequence[NetInfo]) -> Architectures | None:
    """The architecture comparison when configurations differ in their network and in nothing else."""
    keys = varying(groups)
    if len(groups) < 2 or not keys or not set(keys) <= set(ARCH_KEYS):
        return None
    by_key = {n.key: n for n in nets}
    return Architectures([ArchRow(g, by_key.get(net_key(g))) for g in groups])


# ----------------------------------------------------------------------------------------------- crossed grids
@dataclass(frozen=True)
class MainEffect:
    """One factor of a crossed grid: the mean final test accuracy at each of its values, averaged over the other
    factors' combinations, and its best value against the runner-up (an interval when every cell has seeds)."""

    key: str
    values: list[Any]  # in order
    means: list[float]  # at each value, the mean over the other factors' combinations of the configuration means
    best: Any
    runner_up: Any
    diff: float  # best minus runner-up
    interval: tuple[float, float] | None

    @property
    def status(self) -> str:
        """'clear' (the interval excludes zero), 'noise' or 'single_seed', as for a Comparison."""
        if self.interval is None:
            return "single_seed"
        return "clear" if self.interval[0] > 0 or self.interval[1] < 0 else "noise"


@dataclass(frozen=True)
class Grid:
    """Configurations that cross two or more settings, every combination present once."""

    keys: list[str]
    effects: list[MainEffect]  # one per key, in `keys` order

    def others(self, effect: MainEffect) -> list[str]:
        return [k for k in self.keys if k != effect.key]


def _sortable(values: Sequence[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return list(values)


def _main_effect(key: str, keys: Sequence[str], groups: Sequence[an.Group]) -> MainEffect:
    others = [k for k in keys if k != key]
    rest = lambda g: tuple(repr(factor_value(g, k)) for k in others)  # noqa: E731
    levels = _sortable(list(dict.fromkeys(factor_value(g, key) for g in groups)))
    at = {repr(v): [g for g in groups if factor_value(g, key) == v] for v in levels}
    means = [sum(g.stats("test_accuracy").mean for g in at[repr(v)]) / len(at[repr(v)]) for v in levels]
    ranked = sorted(range(len(levels)), key=lambda i: -means[i])
    best, runner = levels[ranked[0]], levels[ranked[1]]
    cells = []
    for g in at[repr(best)]:
        twin = next(h for h in at[repr(runner)] if rest(h) == rest(g))
        cells.append((g.values("test_accuracy"), twin.values("test_accuracy")))
    interval = contrast_interval(cells)
    return MainEffect(key, levels, means, best, runner, means[ranked[0]] - means[ranked[1]], interval)


def crossed_grid(groups: Sequence[an.Group]) -> Grid | None:
    """The grid when configurations differ in two or more settings (not datasets, networks or optimizers, which
    the report compares on their own) and hold every combination of their values exactly once."""
    keys = varying(groups)
    if len(keys) < 2 or any(k in OWN_SECTIONS for k in keys):
        return None
    combos = {tuple(repr(factor_value(g, k)) for k in keys) for g in groups}
    sizes = [len({repr(factor_value(g, k)) for g in groups}) for k in keys]
    if len(combos) != len(groups) or len(groups) != math.prod(sizes):
        return None
    return Grid(list(keys), [_main_effect(k, keys, groups) for k in keys])
