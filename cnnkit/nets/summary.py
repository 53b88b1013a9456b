"""Keras-style model summaries: one row per top-level layer or block, with output shape, parameters and multiply-adds.

A nested block (a residual block, an inner `nn.Sequential`) is one row, as Keras shows a nested model; the counts
come from `cnnkit.nets.counting`, so rows and totals are exact for any network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from cnnkit.nets.counting import BlockCall, NetworkCounts, Shape, forward_pass, parameter_counts

# Parameter-free activations belong to the preceding layer in Keras' view of the network, and so does the padding
# of a "same" convolution.
_FOLDED = (nn.Identity, nn.ZeroPad2d)
_KERAS_TYPES = {
    "Conv2d": "Conv2D",
    "MaxPool2d": "MaxPooling2D",
    "AvgPool2d": "AveragePooling2D",
    "Flatten": "Flatten",
    "Linear": "Dense",
    "Dropout": "Dropout",
    "BatchNorm2d": "BatchNormalization",
}


@dataclass(frozen=True)
class Layer:
    """One row of the summary."""

    name: str
    type: str
    output_shape: tuple[int | None, ...]  # Keras order: (None, H, W, C); () when the output is not one tensor
    params: int  # all its weights, trainable or not (the "Param #" column)
    non_trainable: int = 0
    macs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "non_trainable": self.non_trainable,
            "macs": self.macs,
        }


@dataclass(frozen=True)
class ModelSummary:
    """The rows and the exact totals of a network; `as_dict()` is config.json's `model` section."""

    layers: tuple[Layer, ...]
    counts: NetworkCounts

    def as_dict(self) -> dict[str, Any]:
        return {
            "params": self.counts.params,
            "trainable_params": self.counts.trainable_params,
            "non_trainable_params": self.counts.non_trainable_params,
            "macs": self.counts.macs,
            "layers": [layer.as_dict() for layer in self.layers],
        }


def _keras_type(module: nn.Module) -> str:
    name = type(module).__name__
    return getattr(module, "keras_type", None) or _KERAS_TYPES.get(name, name)


def _snake(type_name: str) -> str:
    out = "".join(
        f"_{c.lower()}" if c.isupper() and i and not type_name[i - 1].isupper() else c.lower()
        for i, c in enumerate(type_name)
    )
    return out.replace("2_d", "2d")


def _keras_shape(shape: Shape | None) -> tuple[int | None, ...]:
    if shape is None:
        return ()
    return (None, *shape[2:], shape[1]) if len(shape) == 4 else (None, *shape[1:])


def _folded(block: BlockCall) -> bool:
    """A parameter-free activation (or padding), shown as part of the layer before it."""
    module = block.module
    is_activation = isinstance(module, _FOLDED) or any(
        cls.__module__ == "torch.nn.modules.activation" for cls in type(module).__mro__
    )
    return is_activation and block.macs == 0 and sum(parameter_counts(module)) == 0


def _row(module: nn.Module, shape: Shape | None, macs: int, names: dict[str, int], recurse: bool = True) -> Layer:
    type_name = _keras_type(module)
    base = _snake(type_name)
    name = f"{base}_{names[base]}" if base in names else base
    names[base] = names.get(base, 0) + 1
    trainable, non_trainable = parameter_counts(module, recurse)
    return Layer(name, type_name, _keras_shape(shape), trainable + non_trainable, non_trainable, macs)


def summarize(network: nn.Module, input_shape: Shape) -> ModelSummary:
    """Rows for the top-level children of `network` in the order its forward pass first calls them, and totals.

    Children never called but holding weights follow with no output shape; weights or multiply-adds of the network
    itself (outside any child) make a last row named after it, so the rows always add up to the totals.
    """
    run = forward_pass(network, input_shape)
    trainable, non_trainable = parameter_counts(network)
    counts = NetworkCounts(trainable, non_trainable, run.macs)
    names: dict[str, int] = {}
    if not list(network.children()):  # a single layer is its own only row
        return ModelSummary((_row(network, run.output_shape, run.macs, names),), counts)
    called = {id(block.module) for block in run.blocks}
    unused = [
        BlockCall(name, child, None, 0)
        for name, child in network.named_children()
        if id(child) not in called and sum(parameter_counts(child)) != 0
    ]
    rows = [_row(b.module, b.output_shape, b.macs, names) for b in (*run.blocks, *unused) if not _folded(b)]
    own = _row(network, run.output_shape, run.macs - sum(b.macs for b in run.blocks), names, recurse=False)
    if own.params or own.macs:
        rows.append(own)
    return ModelSummary(tuple(rows), counts)


def format_summary(title: str, summary: ModelSummary) -> str:
    """The table as Keras prints it, ending with `Total params: 1,625,866`."""
    header = ("Layer (type)", "Output Shape", "Param #")
    body = [
        (
            f"{r.name} ({r.type})",
            "(" + ", ".join("None" if d is None else str(d) for d in r.output_shape) + ")" if r.output_shape else "?",
            f"{r.params:,}",
        )
        for r in summary.layers
    ]
    widths = [max(len(row[i]) for row in [header, *body]) + 3 for i in range(3)]
    line = "─" * sum(widths)

    def fmt(row: tuple[str, str, str]) -> str:
        return f"{row[0]:<{widths[0]}}{row[1]:<{widths[1]}}{row[2]:>{widths[2] - 3}}"

    counts = summary.counts
    out = [f'Model: "{title}"', line, fmt(header), "═" * sum(widths)]
    out += [fmt(row) for row in body]
    out += [
        line,
        f"Multiply-adds per image: {counts.macs:,}",
        f"Trainable params: {counts.trainable_params:,}",
        f"Non-trainable params: {counts.non_trainable_params:,}",
        f"Total params: {counts.params:,}",
    ]
    return "\n".join(out)
