"""The MNIST and CIFAR-10 LightningDataModules (kept apart from the plugin modules: importing them loads Lightning)."""

from __future__ import annotations

from cnnkit_plugins.cifar10 import CIFAR10_SOURCES, CIFAR10_SPEC
from cnnkit_plugins.mnist import MNIST_SOURCES, MNIST_SPEC

from cnnkit import InMemoryDataModule


class MNISTDataModule(InMemoryDataModule):
    spec = MNIST_SPEC
    sources = MNIST_SOURCES


class CIFAR10DataModule(InMemoryDataModule):
    spec = CIFAR10_SPEC
    sources = CIFAR10_SOURCES
