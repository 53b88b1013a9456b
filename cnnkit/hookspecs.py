"""The hooks a cnnkit plugin implements. Each receives a `register` callback and may call it many times."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from cnnkit.registry import RegisterCallback

PROJECT = "cnnkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def cnnkit_register_datasets(register: RegisterCallback) -> None:
    """Register datasets: `register(name, datamodule_class_or_"module:attr", aliases=(), description="")`.

    The class must subclass `cnnkit.InMemoryDataModule`.
    """


@hookspec
def cnnkit_register_architectures(register: RegisterCallback) -> None:
    """Register networks: `register(name, classifier_class_or_"module:attr", aliases=(), description="")`.

    The class must subclass `cnnkit.ImageClassifier`; it is built for the input shape and class count of the dataset.
    """


@hookspec
def cnnkit_register_optimizers(register: RegisterCallback) -> None:
    """Register optimizers: `register(name, cnnkit.OptimizerSpec(...), aliases=(), description="")`."""


@hookspec
def cnnkit_register_studies(register: RegisterCallback) -> None:
    """Register studies (named lists of runs): `register(name, cnnkit.Study(...), aliases=(), description="")`."""
