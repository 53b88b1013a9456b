"""Learning-rate schedules as plugins: a torch scheduler class and its settings, built in `configure_optimizers`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ScheduleSpec:
    """A `torch.optim.lr_scheduler` class (an import path, so registering costs no torch import) and its settings.

    `epochs_argument` names the constructor argument that receives the run's planned epochs (e.g. cosine's
    `T_max`); `monitor` is the logged figure the scheduler steps on (e.g. `val_loss` for ReduceLROnPlateau).
    The scheduler is stepped once per epoch.
    """

    scheduler: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    epochs_argument: str | None = None
    monitor: str | None = None

    def resolved(self, epochs: int) -> dict[str, Any]:
        """Every setting the scheduler is built with for a run of `epochs` epochs (for config.json and Methods)."""
        extra = {self.epochs_argument: epochs} if self.epochs_argument else {}
        return {**dict(self.settings), **extra}

    def build(self, optimizer: torch.optim.Optimizer, epochs: int) -> dict[str, Any]:
        """Lightning's `lr_scheduler` configuration for `optimizer`."""
        module, _, name = self.scheduler.rpartition(".")
        scheduler = getattr(importlib.import_module(module), name)(optimizer, **self.resolved(epochs))
        config: dict[str, Any] = {"scheduler": scheduler, "interval": "epoch", "frequency": 1}
        if self.monitor:
            config["monitor"] = self.monitor
        return config
