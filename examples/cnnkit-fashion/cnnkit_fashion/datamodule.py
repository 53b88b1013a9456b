"""The Fashion-MNIST datamodule (importing it loads Lightning, hence its own module)."""

from __future__ import annotations

from cnnkit import InMemoryDataModule
from cnnkit_fashion.plugin import FASHION_MNIST_SOURCES, FASHION_MNIST_SPEC


class FashionMNISTDataModule(InMemoryDataModule):
    """Fashion-MNIST, whole in memory; splitting, batching and scaling are cnnkit's."""

    spec = FASHION_MNIST_SPEC
    sources = FASHION_MNIST_SOURCES
