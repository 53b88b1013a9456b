"""Lightning's progress bar replaced by Keras-clear output: the run's header, a line per epoch that stays on screen.

On a terminal a live bar runs within each epoch (redrawn at most every `interval` seconds, erased by the epoch's
line); into a file or pipe only the plain lines are written, never carriage-return frames.
"""

from __future__ import annotations

import shutil
import time
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks.progress import ProgressBar

from cnnkit.console.progress import RunProgress, epoch_line, plural, progress_bar, terminal_columns
from cnnkit.console.streams import progress_stream

BAR_WIDTH = 24
CLEAR_LINE = "\r\x1b[K"


class EpochProgress(ProgressBar):
    """Lightning's progress bar replaced: the run's header, a line per epoch, and a live bar on a terminal."""

    def __init__(
        self,
        progress: RunProgress | None = None,
        stream: TextIO | None = None,
        interval: float = 0.2,
        live: bool | None = None,
    ) -> None:
        super().__init__()
        self.progress, self.interval = progress or RunProgress(), interval
        self._stream = stream
        self._live = live
        self.enabled = True
        self._epoch_started = self._last_redraw = 0.0
        self._loss_sum: Any = 0.0
        self._loss_count = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or progress_stream()

    @property
    def live(self) -> bool:
        """Draw a live bar: only on a terminal (never carriage-return frames into a file)."""
        if self._live is None:
            isatty = getattr(self.stream, "isatty", None)
            self._live = bool(isatty and isatty())
        return self._live

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def print(self, *args: Any, **kwargs: Any) -> None:
        self._write(" ".join(str(a) for a in args))

    def _write(self, line: str) -> None:
        if self.enabled:
            self.stream.write(f"{CLEAR_LINE if self.live else ''}{line}\n")
            self.stream.flush()

    def _draw(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.enabled and self.live and (force or now - self._last_redraw >= self.interval):
            self._last_redraw = now
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write(f"\r{text[:width]}\x1b[K")
            self.stream.flush()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        done, epochs = trainer.current_epoch, trainer.max_epochs or 0
        # Lightning's Trainer is given `datamodule` at run time (by its data connector), undeclared in its class
        sizes: dict[str, int] = getattr(trainer.datamodule, "split_sizes", dict)()  # type: ignore[attr-defined]
        clock = self.progress.clock
        started = clock.run_started(sizes.get("train", 0), done) if clock is not None else ""
        eta = [f"study {started}"] if started else []
        resuming = [f"resuming after epoch {done}/{epochs}"] if done else []
        if self.progress.announced:
            if resuming:
                self._write("; ".join(resuming + eta))
            return
        parts = [plural(epochs, "epoch")]
        if sizes:
            parts = [f"{parts[0]}, {sizes.get('train', 0):,} train / {sizes.get('val', 0):,} val"]
        self._write(f"{self.progress.label} — {'; '.join(parts + resuming + eta)}".lstrip(" —"))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = time.perf_counter()
        self._loss_sum, self._loss_count = 0.0, 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not (self.enabled and self.live):
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:  # summed on the device; read back only when the bar is redrawn
            self._loss_sum, self._loss_count = self._loss_sum + loss.detach(), self._loss_count + 1
        total = self.total_train_batches
        done = batch_idx + 1
        shown = f" - loss: {float(self._loss_sum) / self._loss_count:.4f}" if self._loss_count else ""
        bar = progress_bar(done, total, BAR_WIDTH) if isinstance(total, int) and total else f"{done}"
        elapsed = time.perf_counter() - self._epoch_started
        self._draw(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs} {bar} - {elapsed:.0f}s{shown}")

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.sanity_checking or not trainer.training:
            return
        total = self.total_val_batches_current_dataloader
        self._draw(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs} validating {args[2] + 1}/{total}")

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        total = trainer.num_test_batches[0] if trainer.num_test_batches else 0
        done = int(args[2]) + 1
        bar = progress_bar(done, total, BAR_WIDTH) if isinstance(total, int) and total else f"{done}"
        self._draw(f"Testing {bar}", force=done == 1)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.enabled and self.live:
            self.stream.write(CLEAR_LINE)  # the test line comes next, on a clear line
            self.stream.flush()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs after the epoch's validation in Lightning 2, so the validation figures are known.
        seconds = time.perf_counter() - self._epoch_started
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if value.numel() == 1}
        eta: str | None = ""
        epoch, epochs = trainer.current_epoch + 1, trainer.max_epochs or 0
        if self.progress.clock is not None:
            eta = self.progress.clock.epoch_done(epoch, seconds, epochs, metrics)
        if eta is None:  # a worker's: its command shows the line, fitted to its terminal
            return
        columns = terminal_columns(self.stream) if self.live else None  # a file's lines are never cut
        width = columns - 1 if columns else None
        self._write(epoch_line(epoch, epochs, seconds, metrics, eta, width))
