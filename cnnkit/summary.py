"""Keras-style model summaries: layer, output shape (batch, H, W, C) and parameter count."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Parameter-free activations are part of the preceding layer in Keras' view of the network.
_FOLDED = (nn.ReLU, nn.Softmax, nn.LogSoftmax, nn.Tanh, nn.Sigmoid, nn.Identity, nn.ZeroPad2d)
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
    name: str
    type: str
    output_shape: tuple[int | None, ...]
    params: int

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "params": self.params,
        }


def _keras_type(module: nn.Module) -> str:
    return getattr(module, "keras_type", None) or _KERAS_TYPES.get(type(module).__name__, type(module).__name__)


def _snake(type_name: str) -> str:
    out = "".join(
        f"_{c.lower()}" if c.isupper() and i and not type_name[i - 1].isupper() else c.lower()
        for i, c in enumerate(type_name)
    )
    return out.replace("2_d", "2d")


def layer_table(network: nn.Module, input_shape: tuple[int, int, int]) -> list[Layer]:
    """One row per top-level layer of `network` (activations folded in), from a forward pass of one image."""
    children = list(network.children()) if isinstance(network, nn.Sequential) else [network]
    shapes: dict[int, tuple[int, ...]] = {}
    handles = [
        child.register_forward_hook(lambda m, i, o, k=k: shapes.__setitem__(k, tuple(o.shape)))
        for k, child in enumerate(children)
    ]
    try:
        with torch.no_grad():
            was_training = network.training
            network.eval()
            network(torch.zeros(1, *input_shape, device=next(network.parameters()).device))
            network.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    rows: list[Layer] = []
    counts: dict[str, int] = {}
    for k, child in enumerate(children):
        params = sum(p.numel() for p in child.parameters())
        if isinstance(child, _FOLDED) and not params:
            continue
        type_name = _keras_type(child)
        base = _snake(type_name)
        name = base if base not in counts else f"{base}_{counts[base]}"
        counts[base] = counts.get(base, 0) + 1
        shape = shapes[k]
        keras_shape = (None, *shape[2:], shape[1]) if len(shape) == 4 else (None, *shape[1:])
        rows.append(Layer(name, type_name, keras_shape, params))
    return rows


def format_summary(title: str, rows: list[Layer]) -> str:
    """The table as Keras prints it, ending with `Total params: 1,625,866`."""
    header = ("Layer (type)", "Output Shape", "Param #")
    body = [
        (
            f"{r.name} ({r.type})",
            "(" + ", ".join("None" if d is None else str(d) for d in r.output_shape) + ")",
            f"{r.params:,}",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) + 3 for i in range(3)]
    line = "─" * sum(widths)

    def fmt(row: tuple[str, str, str]) -> str:
        return f"{row[0]:<{widths[0]}}{row[1]:<{widths[1]}}{row[2]:>{widths[2] - 3}}"

    total = sum(r.params for r in rows)
    out = [f'Model: "{title}"', line, fmt(header), "═" * sum(widths)]
    out += [fmt(row) for row in body]
    out += [line, f"Trainable params: {total:,}", "Non-trainable params: 0", f"Total params: {total:,}"]
    return "\n".join(out)
