"""The study's question, read from what its configurations vary: one numeric factor (an lr grid, a dropout
grid) or an ablation of training levers against a baseline without any.

Like analysis.py, a pure function of the loaded study; no wording here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cnnkit.report import analysis as an
from cnnkit.training.config import SETTINGS

NUMERIC = tuple(s.name for s in SETTINGS if s.factor_axis)
OWN_SECTIONS = ("dataset", "architecture", "optimizer")
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
