"""Pruning a search's trial on validation, each epoch: cnnkit's own Lightning callback.

After each epoch's validation the callback reports the trial's best value of its metric so far (the quantity that
is the trial's value in the end) to a `Reporter` (the search's, `cnnkit.studies.optuna_bridge`), which says
whether the trial should be pruned; then the fit stops there. The decision travels in the checkpoint, so a trial
killed after it was pruned resumes as pruned. A trial is never pruned at its last epoch: it ran its whole budget,
so it is complete.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import lightning as L

from cnnkit.results.stats import best_value


class Reporter(Protocol):
    """Where a trial reports: `report(epoch, value)` records the value and answers whether to prune now; `close`
    is called once the trial's training is over."""

    def report(self, epoch: int, value: float) -> bool: ...

    def close(self) -> None: ...


class PruneOnValidation(L.Callback):
    """Reports the best `metric` so far after each epoch's validation; stops the fit when the reporter prunes."""

    def __init__(self, metric: str, reporter: Reporter) -> None:
        self.metric, self.reporter = metric, reporter
        self.values: list[float] = []
        self.pruned_epoch: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.pruned_epoch is not None:  # resumed after it was pruned: nothing is left to train
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs after the epoch's validation in Lightning 2 (as EpochLog relies on too).
        epoch = trainer.current_epoch + 1
        metric = trainer.callback_metrics.get(self.metric)
        self.values = [*self.values[: epoch - 1], float(metric) if metric is not None else math.nan]
        best = best_value(self.values, self.metric)
        prune = self.reporter.report(epoch, math.nan if best is None else best)
        if prune and epoch < (trainer.max_epochs or epoch):
            self.pruned_epoch = epoch
            trainer.should_stop = True

    @property
    def value(self) -> float | None:
        """The trial's value: its best epoch's metric (None when no epoch had a finite one)."""
        return best_value(self.values, self.metric)

    def state_dict(self) -> dict[str, Any]:
        return {"values": list(self.values), "pruned_epoch": self.pruned_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.values = [float(v) for v in state_dict.get("values", [])]
        self.pruned_epoch = state_dict.get("pruned_epoch")
