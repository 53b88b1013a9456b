"""One line per finished epoch, for runs whose terminal is shared with others (job processes)."""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L

SHOWN = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


class EpochLines(L.Callback):
    """Prints `epoch k/N - train_loss ... - val_accuracy ... - 12.3 s` at the end of each epoch."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics: dict[str, Any] = trainer.callback_metrics
        figures = " - ".join(f"{name} {float(metrics[name]):.4f}" for name in SHOWN if name in metrics)
        seconds = time.perf_counter() - self._started
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} - {figures} - {seconds:.1f} s", file=sys.stderr)
