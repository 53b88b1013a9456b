"""The settings schema: every run setting declared once, as a field of `RunConfig` with its `Setting`.

Everything else derives from this table: the `cnnkit run` flags and their help, the study-file keys and grids, the
run directory's name, config.json's `run` and `levers` records, the console and status columns, the keywords of
`cnnkit.run` and the report's configuration keys. Adding a setting means adding one field here, the code that
uses its value, its words in the report's catalogs, docs and tests.

A setting left at its default does not show in the directory name, so the assignment's seven runs keep their
names; every other setting that changes the numbers does, in the fixed order of `tag_order`
(`...-adadelta-lr0.1-seed0`). `epochs` and `subset` are a run's budget, not its configuration: they never show in
the name (a run directory holding another budget is refused, as any other difference).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from cnnkit.errors import UsageError
from cnnkit.nets import convnet
from cnnkit.nets.presets import WEIGHT_DECAY_MODE, check_preset
from cnnkit.training.values import (
    FrozenTable,
    Rule,
    integer_flag,
    integer_from,
    names_flag,
    number_flag,
    number_in,
    number_text,
    positive_number,
    table_flag,
    text_matching,
    toml_inline,
)

if TYPE_CHECKING:
    from cnnkit.plugins import Registries

LABEL_PATTERN = re.compile(r"[A-Za-z0-9_.+-]+")


@dataclass(frozen=True)
class Setting:
    """One run setting and everything derived from it.

    `rule` checks a value (its message: `--flag must be <rule.words>, got v`), or `check` does with a message of its
    own; `registry` names the registry whose
    canonical names the value takes (a tuple setting: each item). `flag` is the `cnnkit run` option, None for the
    positional dataset/architecture and for `label` (study files only); `parse` reads its text. `tag`/`words` are
    its directory-name part and console words when it differs from the default, in `tag_order`; `column` heads it
    in console and status tables. `study` and `grid`: a study-file key, and one a grid may vary. `overrides_study`:
    the flag may go with `--study` (a budget or seed). `identity`: two runs equal on every identity setting are one
    configuration (all but the seed). `network`: passed by name to the architecture. `factor_axis`: a number the
    report may plot its figures against. `lever`: a training lever
    (all off by default), recorded under config.json's `levers` with `detail` (extra facts of how it applied).
    `methods`: the key of its words in the report's catalogs. `coerce`: turns a given value into the one the config
    holds (a table: checked and frozen, so that configs stay hashable). `resolve`: the value checked against the
    registries once the run's names are known (an architecture's `arch` table against that architecture).
    """

    kind: type
    rule: Rule | None = None
    check: Callable[[Any], object] | None = None
    registry: str | None = None
    flag: bool = True
    help: str = ""
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    tag: Callable[[Any], str] | None = None
    words: Callable[[Any], str] | None = None
    tag_order: int = 0
    column: str | None = None
    study: bool = True
    grid: bool = True
    overrides_study: bool = False
    identity: bool = True
    network: bool = False
    factor_axis: bool = False
    lever: bool = False
    detail: Callable[[RunConfig, Registries], dict[str, Any]] | None = None
    methods: str | None = None
    coerce: Callable[[Any], Any] | None = None
    resolve: Callable[[Any, RunConfig, Registries], Any] | None = None
    name: str = ""
    default: Any = None

    @property
    def option(self) -> str:
        """`--batch-size` for batch_size; the bare key for a setting without a flag (`label`)."""
        return f"--{self.name.replace('_', '-')}" if self.flag else self.name

    def cli_text(self, value: Any) -> str:
        """A value as its flag takes it (`flip,crop` for a list of names, a TOML inline table for a table)."""
        if self.kind is dict:
            return toml_inline(value)
        return ",".join(value) if self.kind is tuple else str(value)

    def differs(self, value: Any) -> bool:
        """True when `value` (a list read from JSON counts as the tuple) is not this setting's default."""
        return (tuple(value) if isinstance(value, list) else value) != self.default

    def problem(self, value: Any) -> str | None:
        """The one-line message for a value the rule refuses, else None (None is a default, not checked)."""
        if self.rule is None or value is None or self.rule.holds(value):
            return None
        return f"{self.option} must be {self.rule.words}, got {value!r}"


def _spec(default: Any = None, *, required: bool = False, kw_only: bool = False, **setting: Any) -> Any:
    """A RunConfig field carrying its Setting (the field's name and default are filled in by `SETTINGS`)."""
    metadata = {"setting": Setting(**setting)}
    if required:
        return field(metadata=metadata)
    return field(default=default, kw_only=kw_only, metadata=metadata)


def _schedule_detail(config: RunConfig, registries: Registries) -> dict[str, Any]:
    schedule = registries.schedules.get(config.lr_schedule) if config.lr_schedule else None
    return {"lr_schedule_settings": schedule.resolved(config.epochs) if schedule else None}


def _arch_table(value: Any) -> FrozenTable | None:
    """A given `arch` table checked (keys, values) and frozen; an empty one is no table."""
    if value is None:
        return None
    return FrozenTable(convnet.canonical(value)) or None


def _resolve_arch(value: Any, config: RunConfig, registries: Registries) -> FrozenTable | None:
    """The run's `arch` as the overrides of its architecture's own table, checked against the dataset's images;
    the family itself (`convnet`) without stages, or a table for an architecture outside the family, is refused."""
    architecture = registries.architectures.get(config.architecture)
    overrides = getattr(architecture, "arch_overrides", None)
    if overrides is None:
        if value is not None:
            raise UsageError(
                f"--arch describes a network of the convnet family; {config.architecture} is not one of them "
                "(see 'cnnkit list architectures')"
            )
        return None
    shape = registries.datasets.get(config.dataset).input_shape()
    changed = overrides(value, shape)
    return FrozenTable(changed) if changed else None


@dataclass(frozen=True)
class RunConfig:
    """The settings that determine a run's numbers (and name its directory). The levers are off by default."""

    dataset: str = _spec(required=True, kind=str, registry="datasets", flag=False, column="dataset")
    architecture: str = _spec(required=True, kind=str, registry="architectures", flag=False, column="architecture")
    optimizer: str = _spec(
        "adam", kind=str, registry="optimizers", help="optimizer name (default adam)", column="optimizer"
    )
    # A convnet's table (its keys in cnnkit.nets.convnet); for a preset, what the run changes of its own table.
    arch: Mapping[str, Any] | None = _spec(
        None,
        kw_only=True,
        kind=dict,
        coerce=_arch_table,
        resolve=_resolve_arch,
        help="the convnet family's table, a TOML inline table: e.g. "
        '\'{ stages = [[16], [32, 32]], norm = "batch", head = "gap" }\' (keys: stages, downsample, padding, '
        "norm, activation, residual, head, dropout; for a preset such as keras_cifar10, the keys it changes)",
        metavar="TABLE",
        parse=table_flag("--arch", convnet.EXAMPLE),
        tag=convnet.arch_tag,
        words=lambda v: f"arch {toml_inline(v)}",
        tag_order=0,
        column="arch",
        network=True,
    )
    preset: str = _spec(
        "keras",
        kind=str,
        check=check_preset,
        help="keras (default: Keras defaults, as the assignment) or torch",
        tag=lambda v: v,
        words=lambda v: f"preset {v}",
        tag_order=1,
        column="preset",
        methods="preset",
    )
    seed: int = _spec(
        0,
        kind=int,
        rule=integer_from(0),
        help="random seed (default 0)",
        parse=integer_flag("--seed", 0),
        study=False,
        overrides_study=True,
        identity=False,
    )
    epochs: int = _spec(
        10,
        kind=int,
        rule=integer_from(1),
        help="epochs (default 10; studies: their own)",
        parse=integer_flag("--epochs", 1),
        column="epochs",
        overrides_study=True,
        factor_axis=True,
        methods="epochs",
    )
    batch_size: int = _spec(
        128,
        kind=int,
        rule=integer_from(1),
        help="default 128",
        parse=integer_flag("--batch-size", 1),
        tag=lambda v: f"bs{v}",
        words=lambda v: f"batch {v}",
        tag_order=3,
        column="batch",
        factor_axis=True,
        methods="batch_size",
    )
    val_split: float = _spec(
        0.2,
        kind=float,
        rule=number_in(0.0, 1.0, "between 0 and 1 (exclusive)", low_open=True),
        help="fraction of the training set (its end, as Keras) kept for validation (default 0.2)",
        parse=number_flag("--val-split", 0.0, 1.0),
        tag=lambda v: f"val{number_text(v)}",
        words=lambda v: f"val {number_text(v)}",
        tag_order=4,
        column="val",
        factor_axis=True,
        methods="val_split",
    )
    subset: int | None = _spec(
        None,
        kind=int,
        rule=integer_from(2),
        help="keep only the first N training images",
        parse=integer_flag("--subset", 2),
        column="subset",
        overrides_study=True,
        factor_axis=True,
        methods="subset",
    )
    lr: float | None = _spec(
        None,
        kind=float,
        rule=positive_number(),
        help="learning rate (default: the preset's)",
        parse=number_flag("--lr", 0.0),
        tag=lambda v: f"lr{number_text(v)}",
        words=lambda v: f"lr {number_text(v)}",
        tag_order=2,
        column="lr",
        factor_axis=True,
        methods="lr",
    )
    # The training levers, all off by default.
    augment: tuple[str, ...] = _spec(
        (),
        kw_only=True,
        kind=tuple,
        registry="augmentations",
        help="augment training batches on the device: comma-separated, e.g. flip,crop or flip,crop,cutout "
        "(see 'cnnkit list augmentations')",
        metavar="NAMES",
        parse=names_flag,
        tag=lambda v: "aug_" + "+".join(v),
        words=lambda v: "aug " + "+".join(v),
        tag_order=5,
        column="augment",
        lever=True,
        methods="augment",
    )
    dropout: float = _spec(
        0.0,
        kw_only=True,
        kind=float,
        rule=number_in(0.0, 1.0, "a number from 0 up to (not including) 1"),
        help="dropout after downsampling and after Dense(128)",
        metavar="P",
        parse=number_flag("--dropout"),
        tag=lambda v: f"drop{number_text(v)}",
        words=lambda v: f"dropout {number_text(v)}",
        tag_order=6,
        column="dropout",
        network=True,
        lever=True,
        factor_axis=True,
        methods="dropout",
    )
    weight_decay: float = _spec(
        0.0,
        kw_only=True,
        kind=float,
        rule=number_in(0.0, float("inf"), "a number of at least 0"),
        help="weight decay: decoupled as Keras applies it (keras preset) or the optimizer's L2 term (torch preset)",
        metavar="W",
        parse=number_flag("--weight-decay"),
        tag=lambda v: f"wd{number_text(v)}",
        words=lambda v: f"wd {number_text(v)}",
        tag_order=7,
        column="wd",
        network=True,
        lever=True,
        detail=lambda config, _: {"weight_decay_mode": WEIGHT_DECAY_MODE[config.preset]},
        factor_axis=True,
        methods="weight_decay",
    )
    lr_schedule: str | None = _spec(
        None,
        kw_only=True,
        kind=str,
        registry="schedules",
        help="learning-rate schedule, e.g. cosine or plateau (see 'cnnkit list schedules')",
        metavar="NAME",
        tag=lambda v: f"sched_{v}",
        words=lambda v: f"{v} schedule",
        tag_order=8,
        column="schedule",
        lever=True,
        detail=_schedule_detail,
        methods="lr_schedule",
    )
    early_stopping: int | None = _spec(
        None,
        kw_only=True,
        kind=int,
        rule=integer_from(1, "a patience of at least 1 epoch"),
        help="stop when val_loss has not improved for PATIENCE epochs",
        metavar="PATIENCE",
        parse=integer_flag("--early-stopping", 1),
        tag=lambda v: f"es{v}",
        words=lambda v: f"early stop {v}",
        tag_order=9,
        column="patience",
        lever=True,
        methods="early_stopping",
    )
    label_smoothing: float = _spec(
        0.0,
        kw_only=True,
        kind=float,
        rule=number_in(0.0, 1.0, "a number from 0 up to (not including) 1"),
        help="smooth the training targets as Keras' CategoricalCrossentropy(label_smoothing=F) does "
        "(validation and test losses stay plain cross-entropy)",
        metavar="F",
        parse=number_flag("--label-smoothing"),
        tag=lambda v: f"ls{number_text(v)}",
        words=lambda v: f"smoothing {number_text(v)}",
        tag_order=10,
        column="smoothing",
        network=True,
        lever=True,
        factor_axis=True,
        methods="label_smoothing",
    )
    # `label`, when set, names the run's directory in place of its settings (study files only).
    label: str | None = _spec(
        None,
        kw_only=True,
        kind=str,
        rule=text_matching(LABEL_PATTERN, "text of letters, digits, '_', '.', '+' or '-'"),
        flag=False,
        column="label",
        grid=False,
    )

    def __post_init__(self) -> None:
        for setting in COERCED:
            value = getattr(self, setting.name)
            coerced = setting.coerce(value)  # type: ignore[misc]
            if coerced is not value:
                object.__setattr__(self, setting.name, coerced)

    @property
    def dir_name(self) -> str:
        """`<dataset>-<architecture>-<optimizer>[-<setting>...]-seed<k>`, or `<label>-seed<k>` when labelled."""
        stem = self.label or "-".join([self.dataset, self.architecture, self.optimizer, *name_tags(self)])
        return f"{stem}-seed{self.seed}"

    def checked(self, registries: Registries) -> RunConfig:
        """This config with canonical plugin names, or a UsageError naming the bad value and what is allowed."""
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if setting.kind is tuple:
                _check_names(setting, value)
            if setting.check is not None:
                setting.check(value)
            problem = setting.problem(value)
            if problem:
                raise UsageError(problem)
        changes: dict[str, Any] = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if setting.registry and value is not None:
                value = _canonical(setting, value, registries)
            elif setting.kind is float and value is not None:
                value = float(value)
            changes[setting.name] = value
        config = replace(self, **changes)
        resolved = {s.name: s.resolve(getattr(config, s.name), config, registries) for s in SETTINGS if s.resolve}
        return replace(config, **resolved)

    def differences_from(self, stored: Mapping[str, Any]) -> list[str]:
        """What a stored `run` record (config.json) sets otherwise; keys it lacks (older files) count as defaults."""
        mine = settings_record(self)
        return [
            f"{key} {stored.get(key, DEFAULTS_RECORD[key])!r} there vs {value!r} now"
            for key, value in mine.items()
            if stored.get(key, DEFAULTS_RECORD[key]) != value
        ]

    def network_settings(self) -> dict[str, Any]:
        """The settings an architecture takes by keyword (`dropout=0.25, ...`)."""
        return {s.name: getattr(self, s.name) for s in SETTINGS if s.network}

    def levers_record(self, registries: Registries) -> dict[str, Any]:
        """config.json's `levers`: what a run used against overfitting and how (all off by default)."""
        record: dict[str, Any] = {}
        for setting in LEVERS:
            record[setting.name] = _record(getattr(self, setting.name))
            if setting.detail is not None:
                record.update(setting.detail(self, registries))
        return record


def _named(field_: Any) -> Setting:
    default = None if field_.default is MISSING else field_.default
    return replace(field_.metadata["setting"], name=field_.name, default=default)


SETTINGS: tuple[Setting, ...] = tuple(_named(f) for f in fields(RunConfig))
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
LEVERS: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.lever)
COERCED: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.coerce)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
DEFAULTS_RECORD: dict[str, Any] = json.loads(json.dumps(DEFAULTS))
# The settings a directory name shows when they differ from their defaults, in this order.
NAMED_SETTINGS: tuple[Setting, ...] = tuple(sorted((s for s in SETTINGS if s.tag), key=lambda s: s.tag_order))
# Settings that make two runs "the same configuration"; runs equal on all of these differ only in seed.
IDENTITY_KEYS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.identity)


def _record(value: Any) -> Any:
    return json.loads(json.dumps(value))


def settings_record(config: RunConfig) -> dict[str, Any]:
    """The settings as plain JSON data, the run's own first and the levers after them (config.json, result.json)."""
    return _record(asdict(config))


def _check_names(setting: Setting, names: Any) -> None:
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise UsageError(f"{setting.name} must be a list of names such as ['flip', 'crop'], got {names!r}")


def _canonical(setting: Setting, value: Any, registries: Registries) -> Any:
    registry = getattr(registries, str(setting.registry))
    if setting.kind is not tuple:
        return registry.canonical(value)
    canonical = tuple(registry.canonical(name) for name in value)
    repeated = sorted({name for name in canonical if canonical.count(name) > 1})
    if repeated:
        raise UsageError(f"{setting.option} names {', '.join(repeated)} twice; give each {registry.kind} once")
    return canonical


def changed_settings(config: Any) -> list[tuple[str, Any]]:
    """(setting, value) of every named setting that differs from its default, in `tag_order`."""
    changed = []
    for setting in NAMED_SETTINGS:
        if isinstance(config, Mapping):
            value = config.get(setting.name, setting.default)
        else:
            value = getattr(config, setting.name, setting.default)
        if setting.differs(value):
            changed.append((setting.name, tuple(value) if isinstance(value, list) else value))
    return changed


def name_tags(config: Any) -> list[str]:
    """The directory-name parts of the settings that differ from the defaults (`lr0.1`, `aug_flip+crop`, ...)."""
    return [BY_NAME[key].tag(value) for key, value in changed_settings(config)]  # type: ignore[misc]


def describe_settings(config: Any) -> str:
    """The changed settings of a config (or a `run` record) for a console label: `lr 0.1 · aug flip+crop`."""
    return " · ".join(BY_NAME[key].words(value) for key, value in changed_settings(config))  # type: ignore[misc]
