"""Exact counts of any network: parameters from the module tree, multiply-adds from torch's FLOP counter.

Nothing here knows layer types, so nested blocks, residual additions and batch norm of a third party's
network are counted exactly as the built-ins. Non-trainable state is counted as Keras counts it: frozen
parameters plus the floating-point tensors of the state dict that are not parameters (batch norm's running
mean and variance; its integer batch counter is not a weight in Keras and is left out).

Multiply-adds are torch's FLOPs / 2. `FlopCounterMode` counts the matrix products (convolutions, linear layers,
batched and attention products) at two FLOPs per multiply-add, and nothing else: biases, batch norm, pooling,
activations and residual additions add no multiply-adds, as in the usual convention.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

Shape = tuple[int, ...]


@dataclass(frozen=True)
class NetworkCounts:
    trainable_params: int
    non_trainable_params: int
    macs: int  # multiply-adds of one image's forward pass

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


@dataclass(frozen=True)
class BlockCall:
    """A direct child of the network as one forward pass used it."""

    name: str  # its attribute name in the network
    module: nn.Module
    output_shape: Shape | None  # of its first call, batch of one; None when the output is not a tensor
    macs: int  # over all its calls, everything inside it included


@dataclass(frozen=True)
class ForwardPass:
    """One image through the network: its multiply-adds, output shape and direct children in first-call order."""

    macs: int
    output_shape: Shape | None
    blocks: tuple[BlockCall, ...]


def parameter_counts(module: nn.Module, recurse: bool = True) -> tuple[int, int]:
    """(trainable, non-trainable) as Keras reports them, for `module` and (with `recurse`) everything inside it."""
    params = list(module.parameters(recurse=recurse))
    trainable = sum(p.numel() for p in params if p.requires_grad)
    frozen = sum(p.numel() for p in params if not p.requires_grad)
    persistent = set(module.state_dict(keep_vars=True))  # non-persistent buffers are not weights
    buffers = module.named_buffers(recurse=recurse)
    state = sum(b.numel() for name, b in buffers if name in persistent and b.is_floating_point())
    return trainable, frozen + state


@contextmanager
def _evaluating(network: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for the duration; every module's own training flag is restored afterwards."""
    modes = [(module, module.training) for module in network.modules()]
    network.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _example_input(network: nn.Module, input_shape: Shape) -> torch.Tensor:
    """A batch of one zero image on the network's device, in its floating-point dtype."""
    tensors = [*network.parameters(), *network.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())
    return torch.zeros(1, *input_shape, device=device, dtype=dtype)


def _shape(output: object) -> Shape | None:
    return tuple(output.shape) if isinstance(output, torch.Tensor) else None


def forward_pass(network: nn.Module, input_shape: Shape) -> ForwardPass:
    """Run one zero image of `input_shape` (C, H, W) through `network` in eval mode under torch's FLOP counter."""
    counter = FlopCounterMode(display=False)
    started: dict[str, list[int]] = {}  # a stack per child: a child may (indirectly) call itself
    flops: dict[str, int] = {}
    shapes: dict[str, Shape | None] = {}  # insertion order = first-call order

    def before(name: str) -> None:
        started.setdefault(name, []).append(counter.get_total_flops())

    def after(name: str, output: object) -> None:
        flops[name] = flops.get(name, 0) + counter.get_total_flops() - started[name].pop()
        shapes.setdefault(name, _shape(output))

    children = dict(network.named_children())
    handles = []
    for name, child in children.items():
        handles.append(child.register_forward_pre_hook(lambda m, i, n=name: before(n)))
        handles.append(child.register_forward_hook(lambda m, i, o, n=name: after(n, o)))
    try:
        with _evaluating(network), counter:
            output = network(_example_input(network, input_shape))
    finally:
        for handle in handles:
            handle.remove()
    blocks = tuple(BlockCall(name, children[name], shapes[name], flops[name] // 2) for name in shapes)
    return ForwardPass(counter.get_total_flops() // 2, _shape(output), blocks)


def count_network(network: nn.Module, input_shape: Shape) -> NetworkCounts:
    """Exact parameter and multiply-add counts of `network` for one input of `input_shape` (C, H, W)."""
    macs = forward_pass(network, input_shape).macs  # first: it materialises lazy modules' parameters
    trainable, non_trainable = parameter_counts(network)
    return NetworkCounts(trainable, non_trainable, macs)


def architecture_macs(
    architecture: Any, input_shape: Shape, num_classes: int, preset: str = "keras", arch: Any = None
) -> int | None:
    """Multiply-adds per image of a registered architecture (its LightningModule class, or a convnet of the family
    with its `arch` table) built for `input_shape` (C, H, W); None when the plugin fails to build, so that callers
    can carry on without the count."""
    try:
        settings = {"arch": arch} if arch else {}  # a class outside the family is called as before
        model = architecture(input_shape, num_classes, None, preset, **settings)
        return count_network(model.network, input_shape).macs
    except Exception:
        return None
