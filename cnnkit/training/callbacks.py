"""Lightning callbacks that write the run directory's per-epoch files and stop safely on Ctrl-C."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from cnnkit.results.reading import TRAIN_EVAL_KEYS
from cnnkit.results.records import write_progress
from cnnkit.storage.atomic import write_text_atomic

METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
LR_COLUMN = "lr"  # the learning rate of each epoch, written when a schedule changes it


class RunInterrupted(Exception):
    """Raised at a batch boundary after Ctrl-C; the last epoch checkpoint stays for resuming."""


class EpochLog(L.Callback):
    """Writes metrics.csv (one row per epoch, the contract's columns) and times each epoch: its training part
    (`epoch_seconds`, result.json's speed) and its whole, validation included (`wall_seconds`, progress.json's pace).

    Its rows and timings travel in the checkpoint, so a resumed run continues the same file. With
    `learning_rate`, each row also has the learning rate the epoch trained with (the `lr` column); and each row has
    the epoch's clean training figures when `TrainingSetEvaluation` (listed before it) logged them.
    """

    def __init__(self, path: Path, learning_rate: bool = False) -> None:
        self.path, self.learning_rate = path, learning_rate
        self.rows: list[dict[str, float]] = []
        self.epoch_seconds: list[float] = []
        self.wall_seconds: list[float] = []
        self._started = 0.0
        self._finished = 0.0
        self._lr: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.record("training")  # no longer interrupted, if it was

    def record(self, stage: str, test_seconds: float | None = None) -> None:
        """progress.json: the run's stage and its epochs' whole times (`cnnkit.results.records.write_progress`)."""
        write_progress(self.path.parent, stage, self.wall_seconds, test_seconds)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = self._finished = time.perf_counter()
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"]) if self.learning_rate else None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx + 1 == trainer.num_training_batches:
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)
            self._finished = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs after the epoch's validation in Lightning 2, so both halves of the row are known.
        metrics = trainer.callback_metrics
        epoch = trainer.current_epoch + 1
        row: dict[str, float] = {"epoch": epoch}  # the int epoch beside float metrics (written as it is)
        row.update({name: float(metrics[name]) for name in (*METRIC_COLUMNS[1:], *TRAIN_EVAL_KEYS) if name in metrics})
        if self._lr is not None:
            row[LR_COLUMN] = self._lr
        self.rows = [*(r for r in self.rows if r["epoch"] < epoch), row]
        self.epoch_seconds = [*self.epoch_seconds[: epoch - 1], self._finished - self._started]
        self.wall_seconds = [*self.wall_seconds[: epoch - 1], time.perf_counter() - self._started]
        if trainer.is_global_zero:
            write_text_atomic(self.path, format_metrics_csv(self.rows, self.learning_rate))
            self.record("training")

    def snapshot(self) -> EpochLog:
        """A copy of the rows and timings so far (loading a checkpoint later replaces them with that epoch's)."""
        copy = EpochLog(self.path, self.learning_rate)
        copy.rows, copy.epoch_seconds = [dict(row) for row in self.rows], list(self.epoch_seconds)
        copy.wall_seconds = list(self.wall_seconds)
        return copy

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "epoch_seconds": self.epoch_seconds, "wall_seconds": self.wall_seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))
        self.epoch_seconds = list(state_dict.get("epoch_seconds", []))
        self.wall_seconds = list(state_dict.get("wall_seconds", self.epoch_seconds))  # checkpoints before it


def format_metrics_csv(rows: list[dict[str, float]], learning_rate: bool = False) -> str:
    """The contract's columns, `lr` with a schedule, then the clean training figures once an epoch has them (empty
    in the rows of epochs without them: those of a run trained before they were added, then resumed)."""
    out = io.StringIO()
    columns = (*METRIC_COLUMNS, LR_COLUMN) if learning_rate else METRIC_COLUMNS
    if any(name in row for row in rows for name in TRAIN_EVAL_KEYS):  # last: every earlier column keeps its place
        columns = (*columns, *TRAIN_EVAL_KEYS)
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: (v if k == "epoch" else f"{v:.6g}" if k == LR_COLUMN else f"{v:.6f}") for k, v in row.items()}
        )
    return out.getvalue()


class StopOnRequest(L.Callback):
    """Turns a pending stop request (set by the SIGINT handler) into `RunInterrupted` at the next batch end."""

    def __init__(self) -> None:
        self.requested = False

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.requested:
            raise RunInterrupted()

    on_validation_batch_end = on_test_batch_end = on_train_batch_end  # type: ignore[assignment]


class OnTrainStart(L.Callback):
    """Calls `action(trainer)` once training starts (the datamodule is set up, the device known)."""

    def __init__(self, action: Any) -> None:
        self.action = action

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.action(trainer)
