"""The torch side of the `convnet` family: its layers and the classifier built from a `ConvNetSpec`.

The network is one flat `nn.Sequential` (conv, [batch norm], activation, ..., pooling, [dropout], flatten, dense,
...), so that its state-dict keys are `network.<index>.weight` and a Keras-style summary shows every layer. Layers
are created in the order they run, which fixes the order in which their weights are initialised: net_1 and net_2,
presets of the family, draw exactly the numbers their former hand-written classes drew.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.nets.convnet import ConvNetSpec
from cnnkit.nets.model import ImageClassifier
from cnnkit.nets.presets import BATCH_NORM

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


class SameConv2d(nn.Conv2d):
    """Conv2D with TensorFlow's "same" padding: for stride 2 the extra pixel goes to the bottom/right."""

    keras_type = "Conv2D"

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def _pads(self, size: int) -> tuple[int, int]:
        k, s = self.kernel_size[0], self.stride[0]
        total = max((-(-size // s) - 1) * s + k - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pads(x.shape[-2])
        left, right = self._pads(x.shape[-1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


class Add(nn.Module):
    """A residual addition: the running tensor plus the output of an earlier layer (`source`, its index)."""

    keras_type = "Add"

    def __init__(self, source: int) -> None:
        super().__init__()
        self.source = source

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return x + skip

    def extra_repr(self) -> str:
        return f"source={self.source}"


class GlobalAveragePooling2d(nn.Module):
    """The mean of each feature map: (N, C, H, W) -> (N, C), as Keras' GlobalAveragePooling2D."""

    keras_type = "GlobalAveragePooling2D"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class ConvNetwork(nn.Sequential):
    """`nn.Sequential` whose `Add` layers add the output of the earlier layer they name."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sources = {layer.source for layer in self if isinstance(layer, Add)}
        kept: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(self):
            x = layer(x, kept.pop(layer.source)) if isinstance(layer, Add) else layer(x)
            if index in sources:
                kept[index] = x
        return x


def conv_layer(in_channels: int, out_channels: int, padding: str, stride: int, bias: bool, preset: str) -> nn.Conv2d:
    """A 3x3 convolution. "same" with stride 2 pads like TensorFlow (asymmetrically) under the keras preset, and
    symmetrically (padding 1) under torch's, as net_2 always has."""
    if padding == "valid":
        return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=0, bias=bias)
    if stride > 1 and preset == "keras":
        return SameConv2d(in_channels, out_channels, 3, stride, bias=bias)
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)


def build_layers(spec: ConvNetSpec, input_shape: Sequence[int], num_classes: int, preset: str) -> ConvNetwork:
    """The network of `spec` for (channels, height, width) inputs and `num_classes` logits."""
    activation = ACTIVATIONS[spec.activation]
    batch_norm = spec.norm == "batch"
    layers: list[nn.Module] = []
    channels = int(input_shape[0])
    residual = spec.residual_stages(input_shape)
    for stage, paddings, strides, added in zip(spec.stages, spec.padding, spec.strides(), residual, strict=True):
        source = None
        for position, (width, padding, stride) in enumerate(zip(stage, paddings, strides, strict=True)):
            layers.append(conv_layer(channels, width, padding, stride, not batch_norm, preset))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width, **BATCH_NORM[preset]))
            if added and position == len(stage) - 1 and source is not None:
                layers.append(Add(source))
            layers.append(activation())
            if position == 0:
                source = len(layers) - 1  # the first conv's output, after its activation
            channels = width
        if spec.downsample == "maxpool":
            layers.append(nn.MaxPool2d(2))
        if spec.stage_rate:
            layers.append(nn.Dropout(spec.stage_rate))
    features = spec.features(input_shape)
    hidden: tuple[int, ...] = ()
    if isinstance(spec.head, str):  # "gap"
        layers.append(GlobalAveragePooling2d())
    else:
        layers.append(nn.Flatten())
        hidden = spec.head
    for width in hidden:
        layers += [nn.Linear(features, width), activation()]
        if spec.head_rate:
            layers.append(nn.Dropout(spec.head_rate))
        features = width
    layers.append(nn.Linear(features, num_classes))
    return ConvNetwork(*layers)


class ConvNetClassifier(ImageClassifier):
    """The classifier of one network of the `convnet` family (see `cnnkit.nets.convnet`)."""

    def __init__(self, *args: Any, spec: ConvNetSpec, **kwargs: Any) -> None:
        self.spec = spec  # read by build_network, which ImageClassifier.__init__ calls
        super().__init__(*args, **kwargs)

    def build_network(self, input_shape: tuple[int, int, int], num_classes: int, preset: str) -> nn.Module:
        return build_layers(self.spec, input_shape, num_classes, preset)
