"""A study's `[search]` table: what a hyperparameter search tunes, how it samples and prunes, and how its winner
is confirmed. Nothing here imports Optuna (`cnnkit.studies.optuna_bridge` turns a `Search` into Optuna's terms).

The space takes any run setting a grid may vary (the settings schema's `study` and `grid` flags) but the budget
(`epochs`, `subset`: the search's `budget` and the study's `[defaults]` set them). Each dimension is checked with
the schema's own type and rule for its setting: a range of a number setting (`low`/`high`, `log`, `step`; the
setting's type decides int or float), or a `choice` of the setting's values, each read as a study file reads that
setting's value (lists included). `"none"` in a choice stands for "off" where a setting's default is unset (e.g. no
learning-rate schedule), as `--augment none` does on the command line.

Every problem is one `UsageError` line naming the key, raised when the `Search` is made: a study file adds its
path and line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnkit.errors import UsageError
from cnnkit.results.stats import DIRECTIONS
from cnnkit.training.config import BY_NAME, SETTINGS, Setting, settings_record
from cnnkit.training.values import is_int, is_number

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
METRICS = tuple(DIRECTIONS)
BUDGET = ("epochs", "subset")  # a trial's budget; the confirmation's is the study's [defaults]
SEARCHABLE: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.study and s.grid and s.name not in BUDGET)
NONE = "none"  # in a choice: the setting's unset default (no schedule, the preset's lr, ...)
SEARCH_KEYS = ("trials", "sampler", "seed", "pruner", "metric", "budget", "confirm", "space")
CONFIRM_KEYS = ("top", "seeds", "baseline")
RANGE_KEYS = ("low", "high", "log", "step")


class SearchProblem(UsageError):
    """A bad `[search]` spec: its one line, and where it is (`section`: search or search.space; `key` there)."""

    def __init__(self, message: str, section: str = "search", key: str | None = None) -> None:
        super().__init__(message)
        self.section, self.key = section, key


@dataclass(frozen=True)
class Range:
    """A range of a number setting: `low` to `high` (both included), on a log scale or in steps of `step`."""

    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True)
class Choice:
    """A choice among values of a setting, as the setting holds them (a list setting's values are tuples)."""

    values: tuple[Any, ...]

    def __init__(self, values: Iterable[Any]) -> None:
        object.__setattr__(self, "values", tuple(_as_held(v) for v in values) if _iterable(values) else values)


@dataclass(frozen=True)
class Budget:
    """Each trial's budget; a key left unset takes the study's own (its [defaults])."""

    epochs: int | None = None
    subset: int | None = None


@dataclass(frozen=True)
class Confirm:
    """The confirmation: the `top` best trials' settings, `seeds` seeds each at the study's full budget, and with
    `baseline` the study's defaults without the searched settings, with the same seeds."""

    top: int = 1
    seeds: int = 3
    baseline: bool = True


Dimension = Range | Choice


@dataclass(frozen=True)
class Search:
    """A hyperparameter search over `base` (the study's [defaults], a RunSpec): see the module docstring.

    `space`: setting name -> Range or Choice, in the order given. `trials`: how many finished (complete or pruned)
    trials end the search (for `grid`, at most the grid's size: the default). `seed`: the sampler's seed, and the
    seed every trial trains with. `metric`: the validation figure a trial is judged on (its best epoch's), and that
    the pruner sees each epoch.
    """

    base: Any  # RunSpec
    space: Mapping[str, Dimension]
    trials: int | None = None
    sampler: str = "tpe"
    seed: int = 0
    pruner: str = "median"
    metric: str = "val_loss"
    budget: Budget = field(default_factory=Budget)
    confirm: Confirm = field(default_factory=Confirm)

    def __post_init__(self) -> None:
        if isinstance(self.space, Mapping):
            object.__setattr__(self, "space", _Space(self.space))
        check(self)
        if self.trials is None:
            object.__setattr__(self, "trials", grid_size(self))

    def __hash__(self) -> int:
        return hash(repr(self.record()))

    @property
    def direction(self) -> str:
        """`minimize` or `maximize`, from the metric."""
        return DIRECTIONS[self.metric]

    def dimensions(self) -> list[tuple[Setting, Dimension]]:
        return [(BY_NAME[name], dim) for name, dim in self.space.items()]

    def trial_budget(self, epochs: int | None = None, subset: int | None = None) -> tuple[int, int | None]:
        """(epochs, subset) of each trial: the budget's, else the study's (with the command line's overrides)."""
        return (
            self.budget.epochs or epochs or self.base.epochs,
            self.budget.subset
            if self.budget.subset is not None
            else subset
            if subset is not None
            else self.base.subset,
        )

    def record(self) -> dict[str, Any]:
        """The search as plain data (study.json's `search`): everything but the base's settings."""
        return {
            "trials": self.trials,
            "sampler": self.sampler,
            "seed": self.seed,
            "pruner": self.pruner,
            "metric": self.metric,
            "direction": self.direction,
            "budget": {"epochs": self.budget.epochs, "subset": self.budget.subset},
            "confirm": {"top": self.confirm.top, "seeds": self.confirm.seeds, "baseline": self.confirm.baseline},
            "space": [dimension_record(setting, dim) for setting, dim in self.dimensions()],
        }

    def identity(self, epochs: int | None = None, subset: int | None = None) -> dict[str, Any]:
        """What decides the trials (a search directory holding another one is refused): the base's settings, the
        space, sampler, seed, pruner, metric and the trials' budget; not `trials` (a search may be extended) nor
        the confirmation."""
        record = self.record()
        for key in ("trials", "confirm", "budget"):
            record.pop(key)
        trial_epochs, trial_subset = self.trial_budget(epochs, subset)
        base = {k: v for k, v in settings_record(self.base.template).items() if k not in (*BUDGET, "seed")}
        return {**record, "base": base, "trial_epochs": trial_epochs, "trial_subset": trial_subset}


class _Space(dict):  # type: ignore[type-arg]
    """The space as an ordered mapping that can be hashed and compared (a frozen Search holds it)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))


def label(value: Any) -> Any:
    """How Optuna sees a choice value: a list by its run-name tag (`flip+crop`, `none` when empty), an unset
    value as `none`, any other value as it is."""
    if value is None:
        return NONE
    if isinstance(value, tuple):
        return "+".join(value) if value else NONE
    return value


def grid_size(search: Search) -> int | None:
    """The number of combinations of a grid search (None for other samplers)."""
    if search.sampler != "grid":
        return None
    return math.prod(len(dim.values) for dim in search.space.values() if isinstance(dim, Choice))


def dimension_record(setting: Setting, dim: Dimension) -> dict[str, Any]:
    if isinstance(dim, Range):
        return {
            "setting": setting.name,
            "kind": "range",
            "type": setting.kind.__name__,
            "low": dim.low,
            "high": dim.high,
            "log": dim.log,
            "step": dim.step,
        }
    return {
        "setting": setting.name,
        "kind": "choice",
        "type": setting.kind.__name__,
        "values": [list(v) if isinstance(v, tuple) else v for v in dim.values],
        "labels": [label(v) for v in dim.values],
    }


# ------------------------------------------------------------------------------------------------ checking
def check(search: Search) -> None:
    """Every rule of a search spec; the first one broken is a SearchProblem naming its key."""
    _check_number("trials", search.trials, 1, optional=search.sampler == "grid")
    _check_word("sampler", search.sampler, SAMPLERS)
    _check_number("seed", search.seed, 0)
    _check_word("pruner", search.pruner, PRUNERS)
    _check_word("metric", search.metric, METRICS)
    if not isinstance(search.budget, Budget):
        raise SearchProblem(f"[search] budget must be a table of {' and '.join(BUDGET)}", key="budget")
    for key in BUDGET:
        value = getattr(search.budget, key)
        if value is not None and BY_NAME[key].problem(value):
            raise SearchProblem(f"[search] budget {key} must be {BY_NAME[key].rule.words}, got {value!r}", key="budget")  # type: ignore[union-attr]
    if not isinstance(search.confirm, Confirm):
        raise SearchProblem(f"[search] confirm must be a table of {', '.join(CONFIRM_KEYS)}", key="confirm")
    for key in ("top", "seeds"):
        value = getattr(search.confirm, key)
        if not is_int(value) or value < 1:
            raise SearchProblem(
                f"[search] confirm {key} must be an integer of at least 1, got {value!r}", key="confirm"
            )
    if not isinstance(search.confirm.baseline, bool):
        raise SearchProblem(
            f"[search] confirm baseline must be true or false, got {search.confirm.baseline!r}", key="confirm"
        )
    if not search.space:
        raise SearchProblem("[search.space] must name at least one setting to search", key="space")
    for name, dim in search.space.items():
        _check_dimension(name, dim)
    if search.sampler == "grid":
        ranges = [name for name, dim in search.space.items() if isinstance(dim, Range)]
        if ranges:
            raise SearchProblem(
                f"sampler 'grid' takes only choice dimensions; {ranges[0]} is a range "
                f"(give it as {ranges[0]} = {{ choice = [...] }}, or use sampler 'tpe' or 'random')",
                key="sampler",
            )
        size = grid_size(search) or 0
        if search.trials is not None and search.trials > size:
            raise SearchProblem(
                f"[search] trials {search.trials} is more than the grid's {size} combinations", key="trials"
            )


def _check_number(key: str, value: Any, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not is_int(value) or value < minimum:
        raise SearchProblem(f"[search] {key} must be an integer of at least {minimum}, got {value!r}", key=key)


def _check_word(key: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise SearchProblem(f"[search] {key} must be one of {', '.join(allowed)}, got {value!r}", key=key)


def _check_dimension(name: str, dim: Any) -> None:
    where = f"[search.space] {name}"

    def problem(message: str) -> SearchProblem:
        return SearchProblem(f"{where}: {message}", "search.space", name)

    if name not in SEARCHABLE:
        import difflib

        if name in BUDGET:
            raise problem(f"{name} is the trials' budget ([search] budget), not a searched setting")
        close = difflib.get_close_matches(name, SEARCHABLE, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise problem(f"unknown setting '{name}'{hint} (a search varies one of: {', '.join(SEARCHABLE)})")
    setting = BY_NAME[name]
    if isinstance(dim, Range):
        _check_range(setting, dim, problem)
    elif isinstance(dim, Choice):
        _check_choice(setting, dim, problem)
    else:
        raise problem("give a range { low = ..., high = ... } or a choice { choice = [...] }")


def _check_range(setting: Setting, dim: Range, problem: Any) -> None:
    if setting.kind not in (int, float):
        raise problem(
            f"{setting.name} is not a number: give its values as a choice, {setting.name} = {{ choice = [...] }}"
        )
    kind = setting.kind.__name__
    for end in ("low", "high"):
        value = getattr(dim, end)
        if not _type_ok(value, setting.kind):
            raise problem(f"{end} must be {'an integer' if setting.kind is int else 'a number'}, got {value!r}")
        if setting.rule is not None and not setting.rule.holds(value):
            raise problem(f"{end} must be {setting.rule.words}, got {value!r}")
    if dim.low > dim.high:
        raise problem(f"low {dim.low!r} is above high {dim.high!r}")
    if not isinstance(dim.log, bool):
        raise problem(f"log must be true or false, got {dim.log!r}")
    if dim.log and dim.low <= 0:
        raise problem(f"a log range needs low above 0, got {dim.low!r}")
    if dim.step is not None:
        if not _type_ok(dim.step, setting.kind) or dim.step <= 0:
            raise problem(f"step must be a positive {kind}, got {dim.step!r}")
        if dim.log:
            raise problem("a range takes log or step, not both")


def _check_choice(setting: Setting, dim: Choice, problem: Any) -> None:
    if not _iterable(dim.values) or not dim.values:
        raise problem(f"choice must be a non-empty list of {setting.name} values, got {dim.values!r}")
    labels: dict[Any, Any] = {}
    for value in dim.values:
        if value is None and setting.default is None:
            pass
        elif setting.kind is tuple:
            if not isinstance(value, tuple) or not all(isinstance(item, str) for item in value):
                raise problem(f"each choice must be a list of names such as ['flip', 'crop'], got {value!r}")
        elif not _type_ok(value, setting.kind):
            expected = {int: "an integer", float: "a number", str: "text"}.get(setting.kind, setting.kind.__name__)
            unset = f" or '{NONE}'" if setting.default is None else ""
            raise problem(f"each choice must be {expected}{unset}, got {type(value).__name__} {value!r}")
        elif setting.rule is not None and not setting.rule.holds(value):
            raise problem(f"each choice must be {setting.rule.words}, got {value!r}")
        key = repr(label(value))
        if key in labels:
            raise problem(f"the choice {value!r} is given twice")
        labels[key] = value


def _type_ok(value: Any, kind: type) -> bool:
    if kind is float:
        return is_number(value)
    if kind is int:
        return is_int(value)
    return isinstance(value, kind)


def _iterable(values: Any) -> bool:
    return isinstance(values, (list, tuple))


def _as_held(value: Any) -> Any:
    """A choice value as a setting holds it: a list as a tuple, `none` as unset (checked against the setting)."""
    if isinstance(value, list):
        return tuple(value)
    return None if value == NONE else value


# ------------------------------------------------------------------------------------------------ study files
def parse_search(table: Any, base: Any) -> Search:
    """The `[search]` table of a study file over `base` (its [defaults] as a RunSpec); SearchProblem when bad."""
    if not isinstance(table, dict):
        raise SearchProblem("'search' must be a table ([search])")
    for key in table:
        if key not in SEARCH_KEYS:
            raise SearchProblem(f"unknown key '{key}' in [search] (allowed: {', '.join(SEARCH_KEYS)})", key=key)
    space = table.get("space")
    if not isinstance(space, dict):
        raise SearchProblem("a search needs a [search.space] table naming the settings it searches", key="space")
    dims = {name: _dimension(name, spec) for name, spec in space.items()}
    budget = _subtable(table, "budget", BUDGET)
    confirm = _subtable(table, "confirm", CONFIRM_KEYS)
    return Search(
        base=base,
        space=dims,
        trials=table.get("trials"),
        sampler=table.get("sampler", "tpe"),
        seed=table.get("seed", 0),
        pruner=table.get("pruner", "median"),
        metric=table.get("metric", "val_loss"),
        budget=Budget(**budget),
        confirm=Confirm(**confirm),
    )


def _subtable(table: dict[str, Any], key: str, allowed: Sequence[str]) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise SearchProblem(f"[search] {key} must be a table such as {{ {allowed[0]} = ... }}, got {value!r}", key=key)
    for name in value:
        if name not in allowed:
            raise SearchProblem(f"unknown key '{name}' in [search] {key} (allowed: {', '.join(allowed)})", key=key)
    return value


def _dimension(name: str, spec: Any) -> Any:
    where = f"[search.space] {name}"
    if not isinstance(spec, dict):
        raise SearchProblem(
            f"{where} must be a range {{ low = ..., high = ... }} or a choice {{ choice = [...] }}, got {spec!r}",
            "search.space",
            name,
        )
    if "choice" in spec:
        if len(spec) > 1:
            extra = ", ".join(k for k in spec if k != "choice")
            raise SearchProblem(f"{where}: a choice takes no {extra}", "search.space", name)
        values = spec["choice"]
        return Choice(values)
    unknown = [key for key in spec if key not in RANGE_KEYS]
    if unknown:
        raise SearchProblem(
            f"{where}: unknown key '{unknown[0]}' (a range takes {', '.join(RANGE_KEYS)})", "search.space", name
        )
    for end in ("low", "high"):
        if end not in spec:
            raise SearchProblem(f"{where}: a range needs low and high", "search.space", name)
    return Range(spec["low"], spec["high"], spec.get("log", False), spec.get("step"))
