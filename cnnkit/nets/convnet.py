"""The `convnet` family: a CNN described by data (stages of 3x3 convolutions, how they downsample, a head).

- `stages` (required): a list of stages, each a list of conv widths (3x3 convolutions).
- `downsample` (`"maxpool"`): how each stage ends: 2x2 max pooling after it, its last conv with stride 2
  (`"stride"`, padded as net_2 is under each preset), or `"none"`.
- `padding` (`"same"`): `"same"`, `"valid"`, or one list per stage of one value per conv.
- `norm` (`"none"`): `"batch"`: batch norm after each conv, before the activation; the convs then have no bias.
- `activation` (`"relu"`): `"relu"` or `"gelu"`, for the convs and the hidden dense layers.
- `residual` (`false`): in each stage of two or more convs, the output of its first conv (after its activation) is
  added to the output of its last conv before the last activation, where the shapes match.
- `head` (`[128]`): hidden dense widths after flattening, or `"gap"` (global average pooling, then the classifier).
- `dropout` (`0.0`): a rate after each stage and each hidden dense layer, or `{ stages = 0.25, head = 0.5 }`;
  the `--dropout` lever sets both.

A registered architecture of the family is a `ConvNetArchitecture`: the family itself (`convnet`, whose `stages`
a run must give) or a preset, a table of its own (`pooling_cnn` is `{ stages = [[32, 64]] }`). A run's `arch` table
overrides the architecture's keys. Everything here is plain Python (no torch): configurations are checked, named
and described without importing it; `cnnkit.nets.layers` builds the torch network.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnkit.errors import UsageError
from cnnkit.nets.presets import DEFAULT_PRESET

if TYPE_CHECKING:
    from cnnkit.nets.model import ImageClassifier

KEYS = ("stages", "downsample", "padding", "norm", "activation", "residual", "head", "dropout")
DEFAULTS: dict[str, Any] = {
    "downsample": "maxpool",
    "padding": "same",
    "norm": "none",
    "activation": "relu",
    "residual": False,
    "head": [128],
    "dropout": 0.0,
}
CHOICES = {
    "downsample": ("maxpool", "stride", "none"),
    "norm": ("none", "batch"),
    "activation": ("relu", "gelu"),
}
PADDINGS = ("same", "valid")
RATE_KEYS = ("stages", "head")
EXAMPLE = '{ stages = [[32, 32], [64, 64]], downsample = "maxpool", head = [128] }'
TAG_LIMIT = 40  # a longer tag becomes a short hash of the table


def _fail(message: str) -> UsageError:
    return UsageError(f"arch: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_rate(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0


def _widths(value: Any, what: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
        raise _fail(f"{what} must be a list of integer widths, got {value!r}")
    small = [v for v in value if v < 1]
    if small:
        raise _fail(f"{what} has a width below 1 ({small[0]}); every width must be at least 1")
    return list(value)


def _stages(value: Any) -> list[list[int]]:
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(f"'stages' must be a non-empty list of stages such as [[32, 32], [64, 64]], got {value!r}")
    stages = []
    for number, stage in enumerate(value, 1):
        widths = _widths(stage, f"stage {number} of 'stages'")
        if not widths:
            raise _fail(f"stage {number} of 'stages' has no convolutions; give it at least one width")
        stages.append(widths)
    return stages


def _choice(key: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise _fail(f"'{key}' must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return str(value)


def _padding(value: Any) -> str | list[list[str]]:
    if isinstance(value, str):
        return _choice("padding", value, PADDINGS)
    if not isinstance(value, (list, tuple)) or not all(isinstance(stage, (list, tuple)) for stage in value):
        raise _fail(f'\'padding\' must be "same", "valid" or one list per stage of one value per conv, got {value!r}')
    return [[_choice("padding", v, PADDINGS) for v in stage] for stage in value]


def _padding_rows(padding: Any, stages: Sequence[Sequence[int]]) -> list[list[str]]:
    """One padding per conv of `stages`; a UsageError when a per-stage list does not have their shape."""
    if isinstance(padding, str):
        return [[padding for _ in stage] for stage in stages]
    if len(padding) != len(stages) or any(len(p) != len(s) for p, s in zip(padding, stages, strict=False)):
        shape = [len(stage) for stage in stages]
        raise _fail(
            f"'padding' must have one list per stage of one value per conv ({len(stages)} stages of {shape} convs), "
            f"got {padding!r}"
        )
    return [list(row) for row in padding]


def _head(value: Any) -> str | list[int]:
    if isinstance(value, str):
        if value != "gap":
            raise _fail(f"'head' must be a list of hidden dense widths such as [128] or \"gap\", got {value!r}")
        return value
    return _widths(value, "'head'")


def _dropout(value: Any) -> float | dict[str, float]:
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in RATE_KEYS]
        if unknown:
            raise _fail(f"unknown key '{unknown[0]}' in 'dropout' (its keys: stages, head)")
        rates = {key: value.get(key, 0.0) for key in RATE_KEYS}
        bad = [(k, v) for k, v in rates.items() if not _is_rate(v)]
        if bad:
            raise _fail(f"'dropout.{bad[0][0]}' must be a rate from 0 up to (not including) 1, got {bad[0][1]!r}")
        stages, head = (float(rates[key]) for key in RATE_KEYS)
        return stages if stages == head else {"stages": stages, "head": head}
    if not _is_rate(value):
        raise _fail(
            f"'dropout' must be a rate from 0 up to (not including) 1 or {{ stages = P, head = P }}, got {value!r}"
        )
    return float(value)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "stages": _stages,
    "downsample": lambda v: _choice("downsample", v, CHOICES["downsample"]),
    "padding": _padding,
    "norm": lambda v: _choice("norm", v, CHOICES["norm"]),
    "activation": lambda v: _choice("activation", v, CHOICES["activation"]),
    "residual": lambda v: v if isinstance(v, bool) else _raise(_fail(f"'residual' must be true or false, got {v!r}")),
    "head": _head,
    "dropout": _dropout,
}


def _raise(error: Exception) -> Any:
    raise error


def canonical(table: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keys of `table` checked and written one way (family order, lists, floats); a UsageError names the first
    mistake in one line: an unknown key (with the closest one), an unknown value, a width below 1."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise _fail(f"must be a table such as {EXAMPLE}, got {table!r}")
    for key in table:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise _fail(f"unknown key '{key}'{hint} (keys: {', '.join(KEYS)})")
    given: dict[str, Any] = {key: _CHECKS[key](table[key]) for key in KEYS if key in table}
    if "stages" in given and isinstance(given.get("padding"), list):
        rows = _padding_rows(given["padding"], given["stages"])
        values = {v for row in rows for v in row}
        if len(values) == 1:
            given["padding"] = values.pop()  # [["same", "same"]] is "same"
    return given


@dataclass(frozen=True)
class ConvNetSpec:
    """One network of the family with every key resolved: what `cnnkit.nets.layers` builds."""

    stages: tuple[tuple[int, ...], ...]
    downsample: str
    padding: tuple[tuple[str, ...], ...]  # one value per conv
    norm: str
    activation: str
    residual: bool
    head: str | tuple[int, ...]  # "gap" or the hidden dense widths
    stage_rate: float  # the dropout after each stage
    head_rate: float  # the dropout after each hidden dense layer

    def strides(self) -> tuple[tuple[int, ...], ...]:
        """1 for every conv, 2 for each stage's last with `downsample = "stride"`."""
        last = 2 if self.downsample == "stride" else 1
        return tuple(tuple(last if i == len(stage) - 1 else 1 for i in range(len(stage))) for stage in self.stages)

    def residual_stages(self, input_shape: Sequence[int]) -> tuple[bool, ...]:
        """Per stage: whether its first conv's output is added to its last conv's (where the shapes match)."""
        if not self.residual:
            return tuple(False for _ in self.stages)
        added = []
        for stage, (sizes, _) in zip(self.stages, self.sizes(input_shape), strict=True):
            added.append(len(stage) > 1 and stage[0] == stage[-1] and sizes[0] == sizes[-1])
        return tuple(added)

    def sizes(self, input_shape: Sequence[int]) -> list[tuple[list[tuple[int, int]], tuple[int, int]]]:
        """Per stage: the (height, width) after each conv, and after the stage's downsampling; a UsageError when a
        size reaches 0 (the input is too small for the stages)."""
        _, height, width = input_shape
        size = (int(height), int(width))
        plan = []
        for number, (paddings, strides) in enumerate(zip(self.padding, self.strides(), strict=True), 1):
            after = []
            for padding, stride in zip(paddings, strides, strict=True):
                size = (_conv_size(size[0], padding, stride), _conv_size(size[1], padding, stride))
                if min(size) < 1:
                    raise self._too_small(input_shape, number)
                after.append(size)
            if self.downsample == "maxpool":
                size = (size[0] // 2, size[1] // 2)
                if min(size) < 1:
                    raise self._too_small(input_shape, number)
            plan.append((after, size))
        return plan

    def _too_small(self, input_shape: Sequence[int], stage: int) -> UsageError:
        _, height, width = input_shape
        return _fail(
            f"does not fit a {height} × {width} input: the feature maps shrink to nothing in stage {stage} of "
            f'{len(self.stages)} (use fewer stages, "same" padding or downsample = "none")'
        )

    def features(self, input_shape: Sequence[int]) -> int:
        """The classifier's input width: the flattened maps, or the last stage's channels with `head = "gap"`."""
        size = self.sizes(input_shape)[-1][1]
        channels = self.stages[-1][-1]
        return channels if self.head == "gap" else channels * size[0] * size[1]

    def table(self) -> dict[str, Any]:
        """The spec as the family's table, every key given (for the report's Methods and `cnnkit summary`)."""
        padding: Any = self.padding
        values = {v for row in self.padding for v in row}
        if len(values) == 1:
            padding = values.pop()
        rates: Any = (
            self.stage_rate
            if self.stage_rate == self.head_rate
            else {
                "stages": self.stage_rate,
                "head": self.head_rate,
            }
        )
        return _plain(
            {
                "stages": self.stages,
                "downsample": self.downsample,
                "padding": padding,
                "norm": self.norm,
                "activation": self.activation,
                "residual": self.residual,
                "head": self.head,
                "dropout": rates,
            }
        )


def _conv_size(size: int, padding: str, stride: int) -> int:
    """A 3x3 conv's output size: "same" keeps ceil(size / stride), "valid" loses the border."""
    if padding == "same":
        return -(-size // stride)
    return (size - 3) // stride + 1 if size >= 3 else 0


def _plain(value: Any) -> Any:
    """Tuples as lists and tables as dicts, all the way down (what JSON and TOML hold)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def resolve(base: Mapping[str, Any], arch: Mapping[str, Any] | None, lever: float = 0.0) -> ConvNetSpec:
    """The spec of a preset's `base` table overridden by a run's `arch`; `lever` (the --dropout lever), when set,
    is the rate after every stage and every hidden dense layer."""
    given = {**DEFAULTS, **canonical(base), **canonical(arch)}
    if "stages" not in given:
        raise _fail(f"the convnet family needs 'stages' (a list of stages, each a list of conv widths), e.g. {EXAMPLE}")
    stages = tuple(tuple(stage) for stage in given["stages"])
    rows = tuple(tuple(row) for row in _padding_rows(given["padding"], stages))
    rates = given["dropout"]
    stage_rate, head_rate = (rates["stages"], rates["head"]) if isinstance(rates, Mapping) else (rates, rates)
    if lever:
        stage_rate = head_rate = float(lever)
    head = given["head"] if given["head"] == "gap" else tuple(given["head"])
    return ConvNetSpec(
        stages, given["downsample"], rows, given["norm"], given["activation"], given["residual"], head,
        float(stage_rate), float(head_rate),
    )  # fmt: skip


def overrides(base: Mapping[str, Any], arch: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The keys of `arch` that change the preset `base` (or the family's defaults), canonical; None when none do.

    Two tables that describe the same network give the same overrides, so they share a run directory name.
    """
    given, own = canonical(arch), {**DEFAULTS, **canonical(base)}
    changed = {key: value for key, value in given.items() if own.get(key) != value}
    return changed or None


@dataclass(frozen=True)
class ConvNetArchitecture:
    """A registered architecture of the family: `convnet()` is the family itself, `convnet(stages=...)` a preset.

    It is called as an ImageClassifier class is, `architecture(input_shape, num_classes, optimizer, preset, lr,
    arch=..., **settings)`, and builds the classifier of its table overridden by `arch`.
    """

    base: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", canonical(self.base))

    def spec(self, arch: Mapping[str, Any] | None = None, lever: float = 0.0) -> ConvNetSpec:
        return resolve(self.base, arch, lever)

    def arch_overrides(
        self, arch: Mapping[str, Any] | None, input_shape: Sequence[int] | None = None
    ) -> dict[str, Any] | None:
        """A run's `arch` as the overrides of this architecture's table, checked (for `input_shape`, that it fits)."""
        spec = self.spec(arch)
        if input_shape is not None:
            spec.features(input_shape)
        return overrides(self.base, arch)

    def __call__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        optimizer: Any = None,
        preset: str = DEFAULT_PRESET,
        lr: float | None = None,
        *,
        arch: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> ImageClassifier:
        spec = self.spec(arch, settings.get("dropout") or 0.0)
        spec.features(input_shape)  # refuses a table that does not fit the input before torch is imported
        from cnnkit.nets.layers import ConvNetClassifier

        return ConvNetClassifier(input_shape, num_classes, optimizer, preset, lr, spec=spec, **settings)


def convnet(**table: Any) -> ConvNetArchitecture:
    """An architecture of the family to register: `convnet()` (the family), `convnet(stages=[[32, 64]])` (a preset)."""
    return ConvNetArchitecture(table)


# How a run directory and a console line name a table (what it changes), in one short piece.


def _rate(value: float) -> str:
    return format(value, "g")


def _part(key: str, value: Any) -> str:
    if key == "stages":
        return "+".join(".".join(str(w) for w in stage) for stage in value)
    if key == "downsample":
        return {"maxpool": "maxpool", "stride": "stride", "none": "nodown"}[value]
    if key == "padding":
        return value if isinstance(value, str) else "pad" + "+".join("".join(p[0] for p in row) for row in value)
    if key == "norm":
        return "bn" if value == "batch" else "nonorm"
    if key == "activation":
        return str(value)
    if key == "residual":
        return "res" if value else "nores"
    if key == "head":
        return "gap" if value == "gap" else "h" + (".".join(str(w) for w in value) or "0")
    if isinstance(value, Mapping):
        return f"d{_rate(value['stages'])}+{_rate(value['head'])}"
    return f"d{_rate(value)}"


def arch_tag(table: Mapping[str, Any]) -> str:
    """The directory-name part of a table: `arch_16+32.32_bn_gap` (stages, then each changed key), or
    `arch_<8 hex digits>` of the table when that is longer than TAG_LIMIT characters."""
    given = canonical(table)
    tag = "arch_" + "_".join(_part(key, value) for key, value in given.items())
    if len(tag) <= TAG_LIMIT:
        return tag
    digest = hashlib.sha256(json.dumps(given, sort_keys=True).encode()).hexdigest()[:8]
    return f"arch_{digest}"
