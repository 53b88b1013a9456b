"""LeNet-5 (LeCun et al., 1998) adapted to 28x28 inputs, as a cnnkit classifier."""

from __future__ import annotations

from torch import nn

from cnnkit import ImageClassifier


class LeNet5(ImageClassifier):
    """Conv(6, 5x5, pad 2) - ReLU - MaxPool(2) - Conv(16, 5x5) - ReLU - MaxPool(2) - Dense(120) - Dense(84) - Dense.

    The original's 32x32 input becomes a 2-pixel padding of the 28x28 images; its tanh and subsampling layers
    become ReLU and max-pooling, which train faster. On 28x28x1 it has 61,706 parameters.
    """

    def build_network(self, input_shape: tuple[int, int, int], num_classes: int, preset: str) -> nn.Module:
        channels, height, width = input_shape
        features = 16 * ((height // 2 - 4) // 2) * ((width // 2 - 4) // 2)
        return nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(features, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )
