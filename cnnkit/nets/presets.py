"""Presets: which library's defaults a run follows.

`keras` reproduces the original assignment (Keras optimizer defaults, glorot-uniform kernels, zero biases,
TF-style asymmetric "same" padding); `torch` keeps PyTorch's own defaults.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnkit.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch.optim import Optimizer  # by name: in OptimizerSpec's body `torch` is its field, not the module

PRESETS = ("keras", "torch")
DEFAULT_PRESET = "keras"
# Switches of torch's implementation, not of the algorithm: left at their defaults and not reported.
IMPLEMENTATION_FLAGS = frozenset({"foreach", "maximize", "capturable", "differentiable", "fused"})
INIT_DESCRIPTION = {
    "keras": "glorot-uniform kernels, zero biases (Keras defaults)",
    "torch": "PyTorch default initialisation (kaiming-uniform)",
}


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise UsageError(f"unknown preset '{preset}' (choose one of: {', '.join(PRESETS)})")
    return preset


@dataclass(frozen=True)
class OptimizerSpec:
    """A torch optimizer plus the hyperparameters each preset gives it.

    `optimizer` is an import path ("torch.optim.Adam") so registering costs no torch import. The `torch`
    preset starts from the class's own defaults; `keras` overrides them with `keras`.
    """

    optimizer: str
    keras: Mapping[str, Any] = field(default_factory=dict)
    torch: Mapping[str, Any] = field(default_factory=dict)

    def optimizer_class(self) -> type[Optimizer]:
        module, _, name = self.optimizer.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def hyperparameters(self, preset: str, lr: float | None = None, weight_decay: float = 0.0) -> dict[str, Any]:
        """Every hyperparameter the optimizer will be built with (for config.json and the report).

        `weight_decay` goes to the torch optimizer only with the torch preset; the keras preset applies it apart
        (decoupled, as Keras does) and leaves the optimizer's own at its default.
        """
        check_preset(preset)
        if lr is not None and not lr > 0:
            raise UsageError(f"--lr must be a positive number, got {lr}")
        defaults = {
            name: p.default
            for name, p in inspect.signature(self.optimizer_class().__init__).parameters.items()
            if name not in ("self", "params", *IMPLEMENTATION_FLAGS)
            and p.default is not inspect.Parameter.empty
            and isinstance(p.default, (int, float, bool, tuple))
        }
        resolved = {**defaults, **dict(self.torch if preset == "torch" else self.keras)}
        if lr is not None:
            resolved["lr"] = lr
        if weight_decay and not decoupled_weight_decay(preset):
            resolved["weight_decay"] = weight_decay
        return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(resolved.items())}

    def build(
        self, params: Iterable[Any], preset: str, lr: float | None = None, weight_decay: float = 0.0
    ) -> Optimizer:
        hparams = self.hyperparameters(preset, lr, weight_decay)
        hparams = {k: tuple(v) if isinstance(v, list) else v for k, v in hparams.items()}
        return self.optimizer_class()(params, **hparams)


WEIGHT_DECAY_MODE = {"keras": "decoupled", "torch": "l2"}
# Batch norm's settings: Keras' BatchNormalization keeps 0.99 of its running statistics each step (torch's
# momentum 0.01) with epsilon 1e-3; torch's BatchNorm2d keeps 0.9 (momentum 0.1) with epsilon 1e-5.
BATCH_NORM: dict[str, dict[str, Any]] = {"keras": {"momentum": 0.01, "eps": 1e-3}, "torch": {}}


def decoupled_weight_decay(preset: str) -> bool:
    """Keras' optimizers decay weights apart from the gradient (w -= lr * wd * w); torch's add wd * w to it."""
    return WEIGHT_DECAY_MODE[check_preset(preset)] == "decoupled"


def initialize(module: torch.nn.Module, preset: str) -> None:
    """Apply the preset's weight initialisation in place (torch: leave PyTorch's)."""
    import torch

    if check_preset(preset) != "keras":
        return
    for layer in module.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(layer.weight)  # = Keras glorot_uniform (same fan computation)
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)
