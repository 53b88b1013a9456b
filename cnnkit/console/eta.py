"""How long the rest of a study will take: measured training speed times the images x epochs still to train.

Speeds are kept per (dataset, architecture) in seconds per image-pixel, so an MNIST measurement also gives a first
estimate for CIFAR-10 (larger images) before a CIFAR-10 epoch has been timed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

NO_ESTIMATE = "ETA after the first epoch"
# A test pass costs about a third of a training epoch's per image (a forward pass, no backward); a run tests its
# final and, mostly, its best weights: two passes. Used until a run's testing has been timed.
EVAL_COST = 1 / 3
TEST_PASSES = 2


@dataclass(frozen=True)
class Work:
    """Training still to do for one run: `epochs` more epochs over `images` training images of `pixels` each."""

    key: tuple[str, str]
    images: int
    pixels: int
    epochs: int

    @property
    def units(self) -> float:
        return float(self.images) * self.pixels * self.epochs


@dataclass
class Speeds:
    """Measured seconds per image-pixel, per (dataset, architecture), with an overall average as fallback."""

    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    units: dict[tuple[str, str], float] = field(default_factory=dict)
    tests: dict[tuple[str, str], float] = field(default_factory=dict)  # a run's measured testing, seconds

    def add(self, key: tuple[str, str], images: int, pixels: int, seconds: float) -> None:
        """Record that `images` images of `pixels` pixels took `seconds` to train (one or more epochs)."""
        if images > 0 and pixels > 0 and seconds > 0:
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds
            self.units[key] = self.units.get(key, 0.0) + float(images) * pixels

    def add_result(self, result: dict[str, Any], pixels: int) -> None:
        """Seed from a finished run's result.json (`images_per_second`, training time only)."""
        rate = result.get("images_per_second")
        if rate and result.get("train_seconds"):
            key = (str(result.get("dataset")), str(result.get("architecture")))
            self.add(key, round(rate * result["train_seconds"]), pixels, float(result["train_seconds"]))

    def add_test(self, key: tuple[str, str], seconds: float | None) -> None:
        """Record that a run of `key` took `seconds` to test (its final and best weights)."""
        if seconds:
            self.tests[key] = float(seconds)

    def test_seconds(self, key: tuple[str, str], test_images: int, pixels: int) -> float:
        """A run's testing: as measured for `key`, else estimated from its training speed (0 when unknown)."""
        if key in self.tests:
            return self.tests[key]
        rate = self.rate(key)
        return rate * test_images * pixels * EVAL_COST * TEST_PASSES if rate is not None and test_images else 0.0

    def rate(self, key: tuple[str, str]) -> float | None:
        """Seconds per image-pixel for `key` (or the overall average), None before any measurement."""
        if key in self.seconds:
            return self.seconds[key] / self.units[key]
        total = sum(self.units.values())
        return sum(self.seconds.values()) / total if total else None

    def seconds_left(self, work: Iterable[Work]) -> float | None:
        """Seconds to train all of `work`, or None when nothing has been measured (or a run's size is unknown)."""
        total = 0.0
        for item in work:
            rate = self.rate(item.key)
            if rate is None or item.images <= 0:
                return None
            total += rate * item.units
        return total


def parallel_seconds(durations: Sequence[float], slots: int) -> float:
    """Wall time of `durations` taken in order by `slots` workers side by side, each next one by the first free."""
    free = [0.0] * max(1, slots)
    for seconds in durations:
        free[free.index(min(free))] += seconds
    return max(free)


def planned_split(spec: Any, subset: int | None, val_split: float) -> tuple[int, int]:
    """(training, validation) images of a run from its dataset spec ((0, 0) when the dataset gives no spec)."""
    count = getattr(spec, "train_count", 0)
    if not count:
        return 0, 0
    used = min(subset, count) if subset else count
    train = math.floor(used * (1.0 - val_split))  # as data.datamodule.keras_validation_split, without torch
    return train, used - train


def spec_pixels(spec: Any) -> int:
    """Pixels of one image (height x width) from a dataset spec, 1 when unknown."""
    return int(getattr(spec, "height", 1) * getattr(spec, "width", 1)) or 1


def format_duration(seconds: float) -> str:
    """`45s`, `12m 05s`, `1h 07m`."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def eta_text(seconds: float | None) -> str:
    """`ETA 12m 05s`, or the note that an estimate comes after the first epoch."""
    return NO_ESTIMATE if seconds is None else f"ETA {format_duration(seconds)}"
