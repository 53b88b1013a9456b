"""The pooling and strided CNNs of the assignment as LightningModules."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit import ImageClassifier


class SameConv2d(nn.Conv2d):
    """Conv2D with TensorFlow's "same" padding: for stride 2 the extra pixel goes to the bottom/right."""

    keras_type = "Conv2D"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def _pads(self, size: int) -> tuple[int, int]:
        k, s = self.kernel_size[0], self.stride[0]
        total = max((-(-size // s) - 1) * s + k - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pads(x.shape[-2])
        left, right = self._pads(x.shape[-1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _conv(in_channels: int, out_channels: int, stride: int, preset: str) -> nn.Conv2d:
    """A 3x3 "same" convolution; with stride 2 the keras preset pads like TensorFlow (asymmetrically)."""
    if stride > 1 and preset == "keras":
        return SameConv2d(in_channels, out_channels, 3, stride)
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


def _head(features: int, num_classes: int, dropout: list[nn.Module]) -> list[nn.Module]:
    """Flatten, Dense(128, relu)[, Dropout], Dense(classes): `dropout` is the run's `dropout_layers()`."""
    return [nn.Flatten(), nn.Linear(features, 128), nn.ReLU(), *dropout, nn.Linear(128, num_classes)]


class PoolingCNN(ImageClassifier):
    """net_1: two 3x3 convolutions, 2x2 max-pooling, a 128-unit hidden layer (with --dropout: after the pooling
    and after the hidden layer)."""

    def build_network(self, input_shape: tuple[int, int, int], num_classes: int, preset: str) -> nn.Module:
        channels, height, width = input_shape
        return nn.Sequential(
            _conv(channels, 32, 1, preset),
            nn.ReLU(),
            _conv(32, 64, 1, preset),
            nn.ReLU(),
            nn.MaxPool2d(2),
            *self.dropout_layers(),
            *_head(64 * (height // 2) * (width // 2), num_classes, self.dropout_layers()),
        )


class StridedCNN(ImageClassifier):
    """net_2: as net_1, but the second convolution has stride 2 and there is no pooling layer (with --dropout:
    after the strided convolution and after the hidden layer)."""

    def build_network(self, input_shape: tuple[int, int, int], num_classes: int, preset: str) -> nn.Module:
        channels, height, width = input_shape
        return nn.Sequential(
            _conv(channels, 32, 1, preset),
            nn.ReLU(),
            _conv(32, 64, 2, preset),
            nn.ReLU(),
            *self.dropout_layers(),
            *_head(64 * -(-height // 2) * -(-width // 2), num_classes, self.dropout_layers()),
        )
