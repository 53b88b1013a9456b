"""Exact counts of any network: parameters from the module tree, multiply-adds from torch's FLOP counter.

Nothing here knows layer types, so nested blocks, residual additions and batch norm of a third party's
network are counted exactly as the built-ins. Non-trainable state is counted as Keras counts it: frozen
parameters plus floating-point buffers (batch norm's running mean and variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class NetworkCounts:
    trainable_params: int
    non_trainable_params: int
    macs: int  # multiply-adds of one image's forward pass (torch's FLOPs / 2)

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


def parameter_counts(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) as Keras reports them, for `module` and everything inside it."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    state = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    return trainable, frozen + state


def forward_flops(network: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, dict[str, int]]:
    """FLOPs of one image's forward pass in eval mode: the total, and per module path ("" is the whole net)."""
    device = next((p.device for p in network.parameters()), torch.device("cpu"))
    was_training = network.training
    network.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            network(torch.zeros(1, *input_shape, device=device))
    finally:
        network.train(was_training)
    per_module = {}
    for path, ops in counter.get_flop_counts().items():
        # FlopCounterMode names modules "Global" and "<RootClass>.<child path>"
        name = "" if path == "Global" else path.partition(".")[2]
        per_module[name] = int(sum(ops.values()))
    return int(counter.get_total_flops()), per_module


def count_network(network: nn.Module, input_shape: tuple[int, ...]) -> NetworkCounts:
    """Exact parameter and multiply-add counts of `network` for one input of `input_shape` (C, H, W)."""
    trainable, non_trainable = parameter_counts(network)
    flops, _ = forward_flops(network, input_shape)
    return NetworkCounts(trainable, non_trainable, flops // 2)
