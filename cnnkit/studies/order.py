"""The order in which side-by-side workers take a study's runs: the longest first.

Taken in study order, a long run dealt last trains alone while the other slots idle (the MNIST half of the
assignment: net_1, net_2, net_1, net_2 leaves one net_1 run alone at the end). Dealing the longest first (the
classic longest-processing-time rule) lets the slots finish together. Nothing has been timed when the order is
chosen, so a run's length is estimated from its network's multiply-adds per image times the images it passes
forward, a training image counted three times (forward and backward), a validation image twice (validation, and
as many training images evaluated for the clean training figures). Only the shares between runs matter.
"""

from __future__ import annotations

from typing import Any

from cnnkit.console.eta import planned_split
from cnnkit.studies.jobs import Job

TRAINING_PASSES = 3  # a training step costs about three forward passes (forward, then backward: two)
EVALUATION_PASSES = 2  # each epoch evaluates the validation split and as many training images (train_eval)


def estimated_work(config: Any, registries: Any, macs: dict[tuple[Any, ...], int | None]) -> float | None:
    """Multiply-adds of a whole run (training, validation and clean training figures each epoch, the test); None
    when unknown.

    `macs` caches the multiply-adds per image by (dataset, architecture, its arch table)."""
    from cnnkit.nets.counting import architecture_macs

    dataset = registries.datasets.get(config.dataset)
    spec = getattr(dataset, "spec", None)
    table = getattr(config, "arch", None)
    key = (config.dataset, config.architecture, table)
    if key not in macs:
        architecture = registries.architectures.get(config.architecture)
        shape, classes = dataset.input_shape(), dataset.num_classes()
        macs[key] = architecture_macs(architecture, shape, classes, config.preset, table)
    per_image = macs[key]
    train, val = planned_split(spec, config.subset, config.val_split)
    if not per_image or not train:
        return None
    images = config.epochs * (TRAINING_PASSES * train + EVALUATION_PASSES * val) + getattr(spec, "test_count", 0)
    return float(per_image) * images


def longest_first(jobs: list[Job], registries: Any) -> list[Job]:
    """`jobs`, the longest first (ties keep the study's order); in the study's order when any length is unknown."""
    macs: dict[tuple[Any, ...], int | None] = {}
    works = [estimated_work(job.config, registries, macs) for job in jobs]
    known = [work for work in works if work is not None]
    if len(known) < len(works):
        return list(jobs)
    ranked = sorted(zip(known, range(len(jobs)), strict=True), key=lambda pair: (-pair[0], pair[1]))
    return [jobs[index] for _work, index in ranked]
