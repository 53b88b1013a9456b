"""A run's settings: what determines its numbers, how they are checked, and the directory name they give.

A setting left at its default does not show in the name, so the assignment's seven runs keep their names; every
other setting that changes the numbers does, in the fixed order of `NAME_TAGS` (`...-adadelta-lr0.1-seed0`).
`epochs` and `subset` are a run's budget, not its configuration: they never show in the name (a run directory
holding another budget is refused, as any other difference).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from cnnkit.errors import UsageError
from cnnkit.nets.presets import check_preset

if TYPE_CHECKING:
    from cnnkit.plugins import Registries

LABEL_PATTERN = re.compile(r"[A-Za-z0-9_.+-]+")


@dataclass(frozen=True, kw_only=True)
class Levers:
    """What a run may try against overfitting, all off by default; keyword-only, shared by RunConfig and RunSpec.

    `label`, when set, names the run's directory in place of its settings.
    """

    augment: tuple[str, ...] = ()
    dropout: float = 0.0
    weight_decay: float = 0.0
    lr_schedule: str | None = None
    early_stopping: int | None = None
    label: str | None = None


@dataclass(frozen=True)
class RunConfig(Levers):
    """The settings that determine a run's numbers (and name its directory). The levers are off by default."""

    dataset: str
    architecture: str
    optimizer: str = "adam"
    preset: str = "keras"
    seed: int = 0
    epochs: int = 10
    batch_size: int = 128
    val_split: float = 0.2
    subset: int | None = None
    lr: float | None = None

    @property
    def dir_name(self) -> str:
        """`<dataset>-<architecture>-<optimizer>[-<setting>...]-seed<k>`, or `<label>-seed<k>` when labelled."""
        stem = self.label or "-".join([self.dataset, self.architecture, self.optimizer, *name_tags(self)])
        return f"{stem}-seed{self.seed}"

    def checked(self, registries: Registries) -> RunConfig:
        """This config with canonical plugin names, or a UsageError naming the bad value and what is allowed."""
        for name, value, minimum in (
            ("epochs", self.epochs, 1),
            ("batch-size", self.batch_size, 1),
            ("seed", self.seed, 0),
        ):
            if not _is_int(value) or value < minimum:
                raise UsageError(f"--{name} must be an integer of at least {minimum}, got {value!r}")
        if self.subset is not None and (not _is_int(self.subset) or self.subset < 2):
            raise UsageError(f"--subset must be an integer of at least 2, got {self.subset!r}")
        if not _is_number(self.val_split) or not 0.0 < float(self.val_split) < 1.0:
            raise UsageError(f"--val-split must be between 0 and 1 (exclusive), got {self.val_split!r}")
        if self.lr is not None and not (_is_number(self.lr) and self.lr > 0):
            raise UsageError(f"--lr must be a positive number, got {self.lr!r}")
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"--dropout must be a number from 0 up to (not including) 1, got {self.dropout!r}")
        if not _is_number(self.weight_decay) or not 0.0 <= self.weight_decay < math.inf:
            raise UsageError(f"--weight-decay must be a number of at least 0, got {self.weight_decay!r}")
        if self.early_stopping is not None and (not _is_int(self.early_stopping) or self.early_stopping < 1):
            raise UsageError(f"--early-stopping must be a patience of at least 1 epoch, got {self.early_stopping!r}")
        if self.label is not None and not (isinstance(self.label, str) and LABEL_PATTERN.fullmatch(self.label)):
            raise UsageError(f"label must be text of letters, digits, '_', '.', '+' or '-', got {self.label!r}")
        check_preset(self.preset)
        return replace(
            self,
            dataset=registries.datasets.canonical(self.dataset),
            architecture=registries.architectures.canonical(self.architecture),
            optimizer=registries.optimizers.canonical(self.optimizer),
            val_split=float(self.val_split),
            lr=None if self.lr is None else float(self.lr),
            augment=_augmentations(self.augment, registries),
            dropout=float(self.dropout),
            weight_decay=float(self.weight_decay),
            lr_schedule=None if self.lr_schedule is None else registries.schedules.canonical(self.lr_schedule),
        )

    def differences_from(self, stored: Mapping[str, Any]) -> list[str]:
        """What a stored `run` record (config.json) sets otherwise; keys it lacks (older files) count as defaults."""
        mine, defaults = settings_record(self), settings_record(RunConfig("", ""))
        return [
            f"{key} {stored.get(key, defaults[key])!r} there vs {value!r} now"
            for key, value in mine.items()
            if stored.get(key, defaults[key]) != value
        ]


def settings_record(config: RunConfig) -> dict[str, Any]:
    """The settings as plain JSON data, the run's own first and the levers after them (config.json, result.json)."""
    record = json.loads(json.dumps(asdict(config)))
    levers = [f.name for f in fields(Levers)]
    return {**{k: v for k, v in record.items() if k not in levers}, **{k: record[k] for k in levers}}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _augmentations(names: Any, registries: Registries) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise UsageError(f"augment must be a list of names such as ['flip', 'crop'], got {names!r}")
    canonical = tuple(registries.augmentations.canonical(name) for name in names)
    repeated = sorted({name for name in canonical if canonical.count(name) > 1})
    if repeated:
        raise UsageError(f"--augment names {', '.join(repeated)} twice; give each augmentation once")
    return canonical


def _number(value: float) -> str:
    """0.1 -> '0.1', 0.0005 -> '0.0005', 1.0 -> '1', 1e-05 -> '1e-05'."""
    return format(value, "g")


# The settings a directory name shows when they differ from RunConfig's defaults, in this order:
# (setting, its directory-name tag, its words on the console).
NAME_TAGS: tuple[tuple[str, Callable[[Any], str], Callable[[Any], str]], ...] = (
    ("preset", lambda v: v, lambda v: f"preset {v}"),
    ("lr", lambda v: f"lr{_number(v)}", lambda v: f"lr {_number(v)}"),
    ("batch_size", lambda v: f"bs{v}", lambda v: f"batch {v}"),
    ("val_split", lambda v: f"val{_number(v)}", lambda v: f"val {_number(v)}"),
    ("augment", lambda v: "aug_" + "+".join(v), lambda v: "aug " + "+".join(v)),
    ("dropout", lambda v: f"drop{_number(v)}", lambda v: f"dropout {_number(v)}"),
    ("weight_decay", lambda v: f"wd{_number(v)}", lambda v: f"wd {_number(v)}"),
    ("lr_schedule", lambda v: f"sched_{v}", lambda v: f"{v} schedule"),
    ("early_stopping", lambda v: f"es{v}", lambda v: f"early stop {v}"),
)
_DEFAULTS = {f.name: f.default for f in fields(RunConfig)}


def changed_settings(config: Any) -> list[tuple[str, Any]]:
    """(setting, value) of every named setting that differs from its default, in `NAME_TAGS` order."""
    changed = []
    for key, _, _ in NAME_TAGS:
        get = config.get if isinstance(config, Mapping) else lambda name, default: getattr(config, name, default)
        value = get(key, _DEFAULTS[key])
        if isinstance(value, list):
            value = tuple(value)
        if value != _DEFAULTS[key]:
            changed.append((key, value))
    return changed


def name_tags(config: Any) -> list[str]:
    """The directory-name parts of the settings that differ from the defaults (`lr0.1`, `aug_flip+crop`, ...)."""
    tags = {key: tag for key, tag, _ in NAME_TAGS}
    return [tags[key](value) for key, value in changed_settings(config)]


def describe_settings(config: Any) -> str:
    """The changed settings of a config (or a `run` record) for a console label: `lr 0.1 · aug flip+crop`."""
    words = {key: word for key, _, word in NAME_TAGS}
    return " · ".join(words[key](value) for key, value in changed_settings(config))
