"""The hooks a cnnkit plugin implements. Each receives a `register` callback and may call it many times.

`register(name, target, *, aliases=(), description="", reader=None)`: `target` is the object or a lazy
`"module:attr"` string, `description` one line for `cnnkit list`, and `reader` an optional `cnnkit.ReaderInfo`
(display name, a sentence or two for the report's Methods section and a citation, in the report's languages).
"""

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
    """Register datasets: `register(name, datamodule_class_or_"module:attr", aliases=(), description="", reader=None)`.

    The class must subclass `cnnkit.InMemoryDataModule`. `reader=cnnkit.ReaderInfo(...)` tells the report how to
    present the dataset: its display name, a description for the Methods section and its citation.
    """


@hookspec
def cnnkit_register_architectures(register: RegisterCallback) -> None:
    """Register networks: `register(name, classifier_class_or_"module:attr", aliases=(), description="", reader=None)`.

    The class must subclass `cnnkit.ImageClassifier`; it is built for the input shape and class count of the dataset.
    `reader=cnnkit.ReaderInfo(...)` tells the report how to present the network: its display name, a description for
    the Methods section and the paper that introduced it.
    """


@hookspec
def cnnkit_register_optimizers(register: RegisterCallback) -> None:
    """Register optimizers: `register(name, cnnkit.OptimizerSpec(...), aliases=(), description="", reader=None)`."""


@hookspec
def cnnkit_register_studies(register: RegisterCallback) -> None:
    """Register studies (named lists of runs): `register(name, cnnkit.Study(...), aliases=(), description="")`."""


@hookspec
def cnnkit_register_augmentations(register: RegisterCallback) -> None:
    """Register training-set augmentations: `register(name, function_or_"module:attr", aliases=(), description="")`.

    The function takes a batch of uint8 images (N, C, H, W) on the training device and a `torch.Generator` on that
    device, and returns the augmented batch (same shape and dtype). It must draw every random number from that
    generator: cnnkit seeds it from the run's seed, epoch and step, so runs are reproducible and resume bit-exactly.
    """


@hookspec
def cnnkit_register_schedules(register: RegisterCallback) -> None:
    """Register learning-rate schedules: `register(name, cnnkit.ScheduleSpec(...), aliases=(), description="")`.

    A `ScheduleSpec` names a `torch.optim.lr_scheduler` class and its settings; cnnkit builds it in
    `configure_optimizers` and steps it once per epoch (for `monitor="val_loss"`, on that epoch's validation loss).
    """
