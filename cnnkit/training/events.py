"""Tells a run's `RunEvents` where training stands: batches (at most every `interval` seconds) and phases."""

from __future__ import annotations

import time
from typing import Any

import lightning as L

from cnnkit.console.progress import RunEvents
from cnnkit.states import Phase


class ReportEvents(L.Callback):
    """Batches within each epoch and the start and end of training and testing, to `events` (even with --quiet)."""

    def __init__(self, events: RunEvents, interval: float = 0.2) -> None:
        self.events, self.interval = events, interval
        self._last = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.events.phase(Phase.TRAIN_START)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.events.phase(Phase.TRAIN_END)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.events.phase(Phase.TEST_START)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.events.phase(Phase.TEST_END)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now, total = time.monotonic(), trainer.num_training_batches
        if now - self._last >= self.interval or batch_idx + 1 == total:
            self._last = now
            total = int(total) if isinstance(total, int) else 0
            self.events.batch(trainer.current_epoch + 1, trainer.max_epochs or 0, batch_idx + 1, total)

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        now, batch_idx = time.monotonic(), int(args[2])
        total = trainer.num_test_batches[0] if trainer.num_test_batches else 0
        if now - self._last >= self.interval or batch_idx + 1 == total:
            self._last = now
            epochs = trainer.max_epochs or 0
            self.events.batch(epochs, epochs, batch_idx + 1, int(total) if isinstance(total, int) else 0, True)
